package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// sseMsg is one message of an event stream: its fields, or a comment.
type sseMsg struct {
	id, event, data, comment string
}

// sseClient reads an event stream message by message.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openEvents connects to GET /events with the token and the given headers
// and query; the stream is closed when the test ends.
func openEvents(t *testing.T, base, query string, header map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events%s: %v", query, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events%s = %d %q, want 200 text/event-stream", query, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
}

// next reads the next message (a comment counts as one), failing the test
// after 10 s.
func (c *sseClient) next() sseMsg {
	c.t.Helper()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cancel()
		}
	}()
	var m sseMsg
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read the event stream: %v (so far %+v)", err, m)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if m != (sseMsg{}) {
				return m
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "":
			m.comment = v
		case "id":
			m.id = v
		case "event":
			m.event = v
		case "data":
			m.data = v
		}
	}
}

// nextEvent skips comments and "retry" and returns the next event.
func (c *sseClient) nextEvent() (sseMsg, api.Event) {
	c.t.Helper()
	for {
		m := c.next()
		if m.event == "" {
			continue
		}
		var e api.Event
		if m.event != "reset" {
			if err := json.Unmarshal([]byte(m.data), &e); err != nil {
				c.t.Fatalf("event data %q: %v", m.data, err)
			}
			if m.id != strconv.FormatUint(e.EventID, 10) || m.event != e.Event {
				c.t.Fatalf("event id %q, name %q; its data says %d, %q", m.id, m.event, e.EventID, e.Event)
			}
		}
		return m, e
	}
}

func (f *fixture) submit(t *testing.T, id string) {
	t.Helper()
	if rec := f.post(req{body: block(id)}); rec.Code != 202 {
		t.Fatalf("POST /webhook %s = %d %s", id, rec.Code, rec.Body)
	}
}

// TestEventsResume: GET /events streams each state change with its
// event_id as id and its name as event; a stream opened with Last-Event-ID
// (or ?after=, the header winning) starts right after it, so a client that
// reconnects misses none.
func TestEventsResume(t *testing.T) {
	f := newFixture(t, nil)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close) // after the streams' cleanups: Close waits for them
	live := openEvents(t, ts.URL, "", nil)
	f.submit(t, "a")
	f.submit(t, "b")
	_, a := live.nextEvent()
	_, b := live.nextEvent()
	if a.ID != "a" || b.ID != "b" || a.Event != "patch.submitted" || b.EventID != a.EventID+1 {
		t.Fatalf("events %+v, %+v; want a then b submitted, numbered in a row", a, b)
	}
	// Disconnected, two more are sent; resuming after a misses none.
	live.cancel()
	f.submit(t, "c")
	f.submit(t, "d")
	for _, tt := range []struct {
		name, query string
		header      map[string]string
	}{
		{name: "Last-Event-ID", header: map[string]string{"Last-Event-ID": strconv.FormatUint(a.EventID, 10)}},
		{name: "after", query: "?after=" + strconv.FormatUint(a.EventID, 10)},
		{name: "header wins", query: "?after=0", header: map[string]string{"Last-Event-ID": strconv.FormatUint(a.EventID, 10)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := openEvents(t, ts.URL, tt.query, tt.header)
			var got []string
			for range 3 {
				_, e := c.nextEvent()
				got = append(got, e.ID)
			}
			if strings.Join(got, ",") != "b,c,d" {
				t.Errorf("resumed after %d: %v, want b,c,d", a.EventID, got)
			}
		})
	}
}

// TestEventsAuth: the stream needs the token like every other endpoint.
func TestEventsAuth(t *testing.T) {
	f := newFixture(t, nil)
	for _, auth := range []string{"", "Bearer nope"} {
		r := httptest.NewRequest("GET", "/events", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "unauthorized") {
			t.Errorf("GET /events with %q = %d %s, want 401 unauthorized", auth, rec.Code, rec.Body)
		}
	}
}

// TestEventsBadStart: a start that is not a number is refused, naming it.
func TestEventsBadStart(t *testing.T) {
	f := newFixture(t, nil)
	for _, tt := range []struct{ query, header, field string }{
		{query: "?after=x", field: "after"},
		{query: "?after=-1", field: "after"},
		{header: "1e3", field: "Last-Event-ID"},
	} {
		r := httptest.NewRequest("GET", "/events"+tt.query, nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		if tt.header != "" {
			r.Header.Set("Last-Event-ID", tt.header)
		}
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		a := decode(t, rec)
		if rec.Code != 400 || a.Result.Field != tt.field || a.Result.Code != api.CodeFieldInvalid {
			t.Errorf("GET /events%s (Last-Event-ID %q) = %d %s, want 400 naming %s", tt.query, tt.header, rec.Code, rec.Body, tt.field)
		}
	}
}

// TestEventsLost: resuming after events the store no longer has (here one
// past the last: the event log was replaced) gives an "event: reset"
// saying so and what to do, with the latest event as its id, and then the
// stream goes on with the next events; nothing is skipped silently.
func TestEventsLost(t *testing.T) {
	f := newFixture(t, nil)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close) // after the streams' cleanups: Close waits for them
	f.submit(t, "a")
	c := openEvents(t, ts.URL, "", map[string]string{"Last-Event-ID": "1000"})
	m, _ := c.nextEvent()
	var reset resetEvent
	if err := json.Unmarshal([]byte(m.data), &reset); err != nil || m.event != "reset" || m.id != "1" ||
		reset.Code != api.CodeEventsLost || reset.After != 1000 || reset.LastEventID != 1 || !strings.Contains(reset.Do, "GET /patches") {
		t.Fatalf("first message %+v, want event reset, id 1, events_lost after 1000 with what to do", m)
	}
	f.submit(t, "b")
	if _, e := c.nextEvent(); e.ID != "b" || e.EventID != 2 {
		t.Errorf("after the reset: %+v, want b's event 2", e)
	}
}

// TestEventsOutliveTimeouts: a stream lives past the server's read and
// write timeouts (each write gets its own deadline), is kept open by
// heartbeat comments, and ends when the daemon stops or hands over
// (EndWaits), so that the drain does not wait for it.
//
// The server has an observer, as the daemon's does: the stream's deadlines
// and flushes reach the connection through its status-recording writer.
func TestEventsOutliveTimeouts(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Observer = observerFunc(func(string, int, time.Duration) {})
	})
	f.srv.heartbeat = 50 * time.Millisecond
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	c := openEvents(t, ts.URL, "", nil)
	// Heartbeats (three at least) until well past both timeouts; under
	// load they may come late, never not at all (next fails after 10 s).
	opened := time.Now()
	for pings := 0; pings < 3 || time.Since(opened) < 600*time.Millisecond; {
		if m := c.next(); m.comment == "ping" {
			pings++
		}
	}
	f.submit(t, "late")
	if _, e := c.nextEvent(); e.ID != "late" {
		t.Errorf("event after the timeouts: %+v, want late's", e)
	}
	f.srv.EndWaits()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			break // the stream ended
		}
		if strings.HasPrefix(line, "event:") {
			t.Errorf("after EndWaits: %q", line)
		}
	}
}
