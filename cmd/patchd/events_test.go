package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseEvent is one event of GET /events: its id and name, and its data.
type sseEvent struct {
	ID, Name string
	EventID  uint64 `json:"event_id"`
	Event    string `json:"event"`
	Patch    string `json:"id"`
	State    string `json:"state"`
}

// eventStream is an open GET /events.
type eventStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openEvents opens GET /events with the token and lastID as Last-Event-ID
// ("" for none).
func openEvents(t *testing.T, address, token, lastID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+address+"/events", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events: %v", err)
	}
	s := &eventStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *eventStream) close() { s.cancel(); s.resp.Body.Close() }

// next returns the next event (comments skipped), or an error when the
// stream ends or nothing comes for 15 s.
func (s *eventStream) next() (sseEvent, error) {
	timer := time.AfterFunc(15*time.Second, s.cancel)
	defer timer.Stop()
	var ev sseEvent
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if ev.Name == "" {
				continue
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return ev, fmt.Errorf("data %q: %w", data, err)
			}
			return ev, nil
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "id":
			ev.ID = v
		case "event":
			ev.Name = v
		case "data":
			data = v
		}
	}
}

// TestEventsResumeProcess: with the real binary, a client reading GET
// /events that disconnects, misses patches sent meanwhile and a `patchd
// restart`, and reconnects with Last-Event-ID gets every event it missed,
// numbered in a row, then live ones; one that asks for events the store
// does not have gets an "event: reset". A stream open during a restart ends
// at once (the restart does not wait for it), and a stream without the
// token is refused.
func TestEventsResumeProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 4 {
		os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("f%d.txt", i)), []byte("seed\n"), 0o644)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	post := func(i int) {
		t.Helper()
		id := fmt.Sprintf("p%d", i)
		if code, body, err := cl.do("POST", "/webhook", seedBlock(id, fmt.Sprintf("f%d.txt", i))); err != nil || code != 202 {
			t.Fatalf("POST %s = %d %s %v", id, code, body, err)
		}
	}
	applied := func(i int) {
		t.Helper()
		waitFor(t, 15*time.Second, fmt.Sprintf("p%d applied", i), func() bool {
			p, _ := cl.patch(t, fmt.Sprintf("p%d", i))
			return p.State == "applied"
		})
	}

	if resp, err := http.Get("http://" + st.Address + "/events"); err != nil || resp.StatusCode != 401 {
		t.Errorf("GET /events without the token = %v %v, want 401", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	s := openEvents(t, st.Address, e.token(), "")
	post(0)
	var last sseEvent
	for last.Name != "patch.applied" {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if ev.Patch != "p0" || ev.ID != strconv.FormatUint(ev.EventID, 10) || ev.Name != ev.Event {
			t.Fatalf("event %+v, want p0's with id = event_id and event = its name", ev)
		}
		last = ev
	}
	s.close()

	// Disconnected: two patches, a restart, a third.
	post(1)
	post(2)
	applied(2)
	held := openEvents(t, st.Address, e.token(), last.ID)
	began := time.Now()
	if r := e.run("restart"); r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	// The old daemon closed the keep-alive connections it handed over
	// idle; a POST on one the client had not seen closed yet is not
	// retried by net/http: start afresh.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if took := time.Since(began); took > 8*time.Second {
		t.Errorf("restart with a stream open took %s: it waited for the stream", took)
	}
	for {
		if _, err := held.next(); err != nil {
			break // ended by the restart
		}
	}
	post(3)
	applied(3)

	s = openEvents(t, st.Address, e.token(), last.ID)
	want := last.EventID + 1
	var got []string
	for len(got) < 9 {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("resumed stream: %v after %v", err, got)
		}
		if ev.EventID != want {
			t.Fatalf("event %d after %v, want %d: a gap or a repeat", ev.EventID, got, want)
		}
		want++
		got = append(got, ev.Patch+" "+ev.State)
	}
	// A start the store does not have: an event: reset with the latest
	// id, not silence.
	gone := openEvents(t, st.Address, e.token(), "999999")
	if ev, err := gone.next(); err != nil || ev.Name != "reset" || ev.ID != strconv.FormatUint(want-1, 10) {
		t.Errorf("GET /events after 999999: %+v %v, want an event reset with id %d", ev, err, want-1)
	}
	// Each patch's events in order; p2's may interleave with p1's.
	per := map[string][]string{}
	for _, g := range got {
		id, state, _ := strings.Cut(g, " ")
		per[id] = append(per[id], state)
	}
	for _, id := range []string{"p1", "p2", "p3"} {
		if s := strings.Join(per[id], ","); s != "queued,applying,applied" {
			t.Errorf("resumed after %d: %s's events %s, want queued,applying,applied (all: %v)", last.EventID, id, s, got)
		}
	}
}
