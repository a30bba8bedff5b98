package store

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestEvents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: path})
	mustSubmit(t, s, "a", "a")
	mustSubmit(t, s, "b", "b")
	mustUpdate(t, s, "a", setState(StateApplying))
	mustUpdate(t, s, "a", func(p *Patch) { p.Diff = "no event: same state" })
	mustUpdate(t, s, "a", setState(StateQueued))
	mustUpdate(t, s, "a", setState(StateApplying))
	mustUpdate(t, s, "a", setState(StateApplied))
	mustUpdate(t, s, "a", setState(StateReverted))
	mustUpdate(t, s, "b", func(p *Patch) { p.State = StateFailed; p.Error = "pattern not found" })
	s.Submit(context.Background(), Patch{ID: "a"}, []byte("a")) // repeated: no event
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	type ev struct {
		Event, ID string
		Seq       uint64
		State     State
		Error     string
	}
	want := []ev{
		{"patch.submitted", "a", 1, StateQueued, ""},
		{"patch.submitted", "b", 2, StateQueued, ""},
		{"patch.applying", "a", 1, StateApplying, ""},
		{"patch.requeued", "a", 1, StateQueued, ""},
		{"patch.applying", "a", 1, StateApplying, ""},
		{"patch.applied", "a", 1, StateApplied, ""},
		{"patch.reverted", "a", 1, StateReverted, ""},
		{"patch.failed", "b", 2, StateFailed, "pattern not found"},
	}
	var got []ev
	for _, e := range readEvents(t, path) {
		if time.Since(e.Time) > time.Minute || e.Time.After(time.Now()) {
			t.Errorf("event time %v, want about now", e.Time)
		}
		got = append(got, ev{e.Event, e.ID, e.Seq, e.State, e.Error})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events =\n%+v\nwant\n%+v", got, want)
	}
}

func TestEventsWriteFailureIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: path})
	// Break the event log under the store: writes to a closed file fail.
	s.events.f.Close()
	mustSubmit(t, s, "a", "a")
	mustUpdate(t, s, "a", setState(StateApplying))
	if p, _ := s.Get("a"); p.State != StateApplying {
		t.Errorf("state = %q, want applying", p.State)
	}
}
