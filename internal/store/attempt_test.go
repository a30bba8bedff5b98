package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttemptsCountDeaths: an attempt begun and never ended is a daemon
// that died working on the patch; the count survives reopening (and so a
// new process), and ends with EndAttempt or another patch.
func TestAttemptsCountDeaths(t *testing.T) {
	dir := t.TempDir()
	begin := func(id string, end bool) int {
		t.Helper()
		s := openTest(t, dir, Options{})
		n, err := s.BeginAttempt(id)
		if err != nil {
			t.Fatal(err)
		}
		if end {
			if err := s.EndAttempt(); err != nil {
				t.Fatal(err)
			}
		}
		// Close as a dying process would leave things: the file as written.
		s.Close()
		return n
	}
	for i, step := range []struct {
		id   string
		end  bool
		want int
	}{
		{"P1", false, 0}, {"P1", false, 1}, {"P1", false, 2}, {"P1", true, 3},
		{"P1", false, 0}, {"P2", false, 0}, {"P1", false, 0}, {"P1", true, 1}, {"P2", true, 0},
	} {
		if got := begin(step.id, step.end); got != step.want {
			t.Fatalf("step %d: BeginAttempt(%s) = %d deaths, want %d", i, step.id, got, step.want)
		}
	}
	// A damaged file counts nothing rather than failing.
	os.WriteFile(filepath.Join(dir, attemptName), []byte("garbage\n7\nP1\n"), 0o600)
	if got := begin("P1", false); got != 0 {
		t.Errorf("after a damaged file: %d deaths, want 0", got)
	}
}

// TestDrop: a queued patch is failed with the event patch.dropped; any
// other is refused, naming its state.
func TestDrop(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	s := openTest(t, filepath.Join(dir, "q"), Options{EventsPath: events})
	mustSubmit(t, s, "A", "a")
	mustSubmit(t, s, "B", "b")
	mustUpdate(t, s, "B", setState(StateApplying))
	p, err := s.Drop(context.Background(), "A")
	if err != nil || p.State != StateFailed || p.Error != DroppedError {
		t.Fatalf("Drop(A) = %s %q, %v; want failed with %q", p.State, p.Error, err, DroppedError)
	}
	if _, err := s.Drop(context.Background(), "A"); !errors.Is(err, ErrNotQueued) || !strings.Contains(err.Error(), "A is failed") {
		t.Errorf("Drop(A) again = %v, want ErrNotQueued saying it is failed", err)
	}
	if _, err := s.Drop(context.Background(), "B"); !errors.Is(err, ErrNotQueued) || !strings.Contains(err.Error(), "B is applying") {
		t.Errorf("Drop(B) = %v, want ErrNotQueued saying it is applying", err)
	}
	if _, err := s.Drop(context.Background(), "C"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Drop(C) = %v, want ErrNotFound", err)
	}
	s.Close()
	data, _ := os.ReadFile(events)
	if !strings.Contains(string(data), `"event":"patch.dropped","id":"A"`) {
		t.Errorf("events = %s, want patch.dropped for A", data)
	}
}
