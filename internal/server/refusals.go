package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// How many refused requests are logged one by one: a burst of
// refusalBurst lines, then refusalRate a second. The rest are counted and
// reported in one line per refusalSummaryEvery, so that a flood of bad
// requests can neither fill the disk nor go unnoticed.
const (
	refusalBurst        = 20
	refusalRate         = 5.0
	refusalSummaryEvery = time.Second
	// refusalTextMax bounds the client-chosen text quoted in a line.
	refusalTextMax = 256
)

// refusalLog writes the log lines of refused requests, rate-limited by a
// token bucket.
type refusalLog struct {
	log *slog.Logger

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
	pending    bool // a summary line is scheduled
}

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, tokens: refusalBurst, last: time.Now()}
}

// loggedStatus says which refusals are logged: the ones a client's mistake
// or an attack causes. 404, 409 and 422 are answers about patches.
func loggedStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusTooManyRequests:
		return true
	}
	return false
}

// refused logs one refusal, or counts it when over the rate.
func (l *refusalLog) refused(code int, client, method, path, reason string) {
	if l.take() {
		l.log.Warn("request refused", "status", code, "client", client, "method", method,
			"path", clip(path), "reason", clip(reason))
	}
}

// note logs a line of its own under the same rate limit (the connection
// limits' closes), or counts it when over the rate.
func (l *refusalLog) note(msg string, args ...any) {
	if l.take() {
		l.log.Warn(msg, args...)
	}
}

// take spends a token, or counts a suppressed line and schedules the
// summary.
func (l *refusalLog) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(refusalBurst, l.tokens+now.Sub(l.last).Seconds()*refusalRate)
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		if !l.pending {
			l.pending = true
			time.AfterFunc(refusalSummaryEvery, l.summary)
		}
		return false
	}
	l.tokens--
	return true
}

// summary reports the refusals left out since the last one.
func (l *refusalLog) summary() {
	l.mu.Lock()
	n := l.suppressed
	l.suppressed, l.pending = 0, false
	l.mu.Unlock()
	if n > 0 {
		l.log.Warn(fmt.Sprintf("suppressed %d refusals (more than %g a second are not logged one by one)", n, refusalRate),
			"suppressed", n)
	}
}

// clip shortens client-chosen text for the log.
func clip(s string) string {
	if len(s) <= refusalTextMax {
		return s
	}
	return s[:refusalTextMax] + "…"
}
