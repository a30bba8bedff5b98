package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// The timing of GET /events. A stream sends a comment every
// eventsHeartbeat so that proxies and idle timers keep it open; each
// write must finish within eventsWriteTime (a client that stopped reading
// is cut then); a client that lost the stream reconnects after
// eventsRetry (the SSE "retry" field).
const (
	eventsHeartbeat = 15 * time.Second
	eventsWriteTime = 30 * time.Second
	eventsRetry     = time.Second
)

// resetEvent is the data of an "event: reset" on GET /events: the events
// asked for are no longer kept (api.CodeEventsLost), so the stream goes on
// from the latest event; the client must read the state again.
type resetEvent struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	After       uint64 `json:"after"`         // the event the client asked to resume after
	LastEventID uint64 `json:"last_event_id"` // where the stream goes on from
	Do          string `json:"do"`
}

// eventsStart reads where a stream starts: the Last-Event-ID header (which
// an EventSource sends when it reconnects), else ?after=, else after the
// latest event (only what comes next).
func (s *Server) eventsStart(r *http.Request) (uint64, error) {
	name, v := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if v == "" {
		name, v = "after", r.URL.Query().Get("after")
	}
	if v == "" {
		st, err := s.opts.Service.Status(r.Context())
		return st.LastEventID, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, name, "%s must be an event_id, a number from 0, not %q", name, clip(v))
	}
	return n, nil
}

// handleEvents is GET /events: Server-Sent Events, one per state change of
// a patch (id: its event_id, event: its name, data: the event as JSON, as
// in events.jsonl), from after the start (eventsStart) and then live,
// until the client goes, the daemon stops or hands over (EndWaits), or
// the store ends the subscription for falling behind (the client
// reconnects with Last-Event-ID and misses nothing).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	// The dashboard's page reads the stream with its session cookie (an
	// EventSource sends no Authorization header); reading changes nothing.
	if d := s.opts.Dashboard; (d == nil || !d.Authenticated(r)) && !s.requireToken(w, r) {
		return
	}
	after, err := s.eventsStart(r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sub, err := s.opts.Service.Subscribe(ctx, after)
	if err != nil && !isEventsLost(err) {
		s.refuse(w, r, err)
		return
	}
	// The server's read and write timeouts run from the request's start,
	// and a read deadline that passes cancels the request's context: a
	// stream has none; each write gets its own deadline instead.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if s.closing.Load() {
		h.Set("Connection", "close")
	}
	st := &eventStream{w: w, rc: rc}
	st.printf("retry: %d\n\n", eventsRetry.Milliseconds())
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	resets := 0
	for st.err == nil {
		if err != nil {
			// The start is no longer kept: say so, and go on from now.
			last, serr := s.opts.Service.Status(ctx)
			if resets++; serr != nil || resets > 3 {
				return
			}
			st.reset(after, last.LastEventID, api.ErrorOf(err).Message)
			after = last.LastEventID
			if sub, err = s.opts.Service.Subscribe(ctx, after); err != nil && !isEventsLost(err) {
				st.comment("the event stream ended: " + api.ErrorOf(err).Message)
				return
			}
			continue
		}
		select {
		case e, ok := <-sub.Events():
			if !ok {
				err = sub.Err()
				if !isEventsLost(err) {
					// Fell behind, the store closed, or the client went:
					// a client that is still there reconnects with
					// Last-Event-ID and misses nothing.
					if err != nil && ctx.Err() == nil {
						st.comment("the event stream ended: " + api.ErrorOf(err).Message + "; reconnect with Last-Event-ID")
					}
					return
				}
				continue
			}
			st.event(e)
			after, resets = e.EventID, 0
		case <-heartbeat.C:
			st.comment("ping")
		case <-s.endWaits:
			st.comment("patchd is stopping or restarting; reconnect with Last-Event-ID")
			return
		case <-ctx.Done():
			return
		}
	}
}

// isEventsLost reports whether err says the events asked for are no
// longer kept.
func isEventsLost(err error) bool {
	e := api.ErrorOf(err)
	return e != nil && e.Code == api.CodeEventsLost
}

// eventStream writes one SSE stream, each write flushed and given its own
// deadline; err is the first write's error, after which it writes nothing.
type eventStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

func (st *eventStream) printf(format string, args ...any) {
	st.write(fmt.Appendf(st.buf[:0], format, args...))
}

func (st *eventStream) write(b []byte) {
	st.buf = b[:0]
	if st.err != nil {
		return
	}
	st.rc.SetWriteDeadline(time.Now().Add(eventsWriteTime))
	if _, st.err = st.w.Write(b); st.err != nil {
		return
	}
	if err := st.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		st.err = err
	}
}

func (st *eventStream) comment(text string) { st.printf(": %s\n\n", text) }

// event writes e; its JSON holds no newline, so it is one data line.
func (st *eventStream) event(e api.Event) {
	data, err := json.Marshal(e)
	if err != nil {
		st.err = err
		return
	}
	b := fmt.Appendf(st.buf[:0], "id: %d\nevent: %s\ndata: ", e.EventID, e.Event)
	b = append(append(b, data...), "\n\n"...)
	st.write(b)
}

// reset writes an "event: reset" whose id is last, so that a client that
// reconnects resumes after it.
func (st *eventStream) reset(after, last uint64, why string) {
	data, _ := json.Marshal(resetEvent{
		Code: api.CodeEventsLost, Message: why, After: after, LastEventID: last,
		Do: "events after " + strconv.FormatUint(after, 10) + " are no longer kept: read the patches again (GET /patches); the stream goes on with the events after " + strconv.FormatUint(last, 10),
	})
	b := fmt.Appendf(st.buf[:0], "id: %d\nevent: reset\ndata: ", last)
	b = append(append(b, data...), "\n\n"...)
	st.write(b)
}
