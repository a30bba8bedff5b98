package store

import (
	"path/filepath"
	"testing"
	"time"
)

// TestStatsDoNotWaitForTheLock: Stats and LastEventID, all that /health
// asks the store, answer while the store's lock is held (by a long scan,
// a committer's batch), and they count what has committed (issue 13: with
// a long history, /health waited behind the summary repair's scan).
func TestStatsDoNotWaitForTheLock(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: filepath.Join(dir, "events.jsonl")})
	mustSubmit(t, s, "a", "a")
	mustSubmit(t, s, "b", "b")
	mustUpdate(t, s, "a", setState(StateApplying))
	mustUpdate(t, s, "a", setState(StateApplied))

	s.mu.Lock() // store work that takes long
	type answer struct {
		st   Stats
		last uint64
	}
	got := make(chan answer, 1)
	go func() { got <- answer{s.Stats(), s.LastEventID()} }()
	var a answer
	select {
	case a = <-got:
		s.mu.Unlock()
	case <-time.After(10 * time.Second):
		s.mu.Unlock()
		t.Fatal("Stats and LastEventID waited for the store's lock")
	}
	if a.st.Queued != 1 || a.st.Applied != 1 || a.st.Total != 2 || a.st.Batches == 0 || a.st.JournalBytes == 0 || a.last != 4 {
		t.Errorf("Stats = %+v, LastEventID = %d; want 1 queued, 1 applied, 2 in all, 4 events", a.st, a.last)
	}
	// Counts follow each commit, and a reopened store starts from its own.
	mustUpdate(t, s, "b", setState(StateApplying))
	if st := s.Stats(); st.Queued != 0 || st.Applying != 1 {
		t.Errorf("after an update Stats = %+v, want 0 queued, 1 applying", st)
	}
	s.Close()
	s = openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: filepath.Join(dir, "events.jsonl")})
	if st := s.Stats(); st.Applying != 1 || st.Applied != 1 || st.Total != 2 {
		t.Errorf("after reopening Stats = %+v, want 1 applying, 1 applied", st)
	}
}
