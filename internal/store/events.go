package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Event is one line of the event log.
type Event struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"` // patch.submitted, patch.applying, patch.applied, patch.failed, patch.reverted, patch.requeued, patch.dropped
	ID    string    `json:"id"`
	Seq   uint64    `json:"seq"`
	State State     `json:"state"`
	Error string    `json:"error,omitempty"`
}

// eventLog appends events after their records are durable. Only the
// committer goroutine writes to it.
type eventLog struct {
	f       *os.File
	path    string
	log     *slog.Logger
	buf     []byte
	failing bool // a write failed; log again only once it works
}

func openEventLog(path string, log *slog.Logger) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}
	return &eventLog{f: f, path: path, log: log}, nil
}

// append writes the events of a committed batch with one write. A failure
// is logged: the journal already holds the truth, and a full disk must not
// turn into failed patches.
func (l *eventLog) append(batch []*op, now time.Time) {
	l.buf = l.buf[:0]
	n := 0
	for _, o := range batch {
		name := o.event
		if name == "" {
			name = eventName(o.prev, o.patch.State)
		}
		if name == "" {
			continue
		}
		line, err := json.Marshal(Event{
			Time: now.UTC(), Event: name, ID: o.patch.ID, Seq: o.patch.Seq,
			State: o.patch.State, Error: o.patch.Error,
		})
		if err != nil {
			l.log.Error("encode event", "id", o.patch.ID, "error", err)
			continue
		}
		l.buf = append(append(l.buf, line...), '\n')
		n++
	}
	if n == 0 {
		return
	}
	if _, err := l.f.Write(l.buf); err != nil {
		if !l.failing {
			l.log.Error("event log write failed; events are lost until it works again", "path", l.path, "error", err)
		}
		l.failing = true
		return
	}
	if l.failing {
		l.log.Info("event log writable again", "path", l.path)
		l.failing = false
	}
	if cap(l.buf) > 1<<20 {
		l.buf = nil
	}
}

func (l *eventLog) close() error {
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close event log: %w", err)
	}
	return nil
}
