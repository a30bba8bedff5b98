package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// buildHistory submits n patches through the store API from many
// goroutines and moves each to applied (applying, then applied with a
// small diff and one file), as the worker would: 3 records a patch.
func buildHistory(t testing.TB, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id := fmt.Sprintf("h%07d", i)
				_, _, err := s.Submit(ctx, Patch{ID: id, Role: "refactor", Target: "src/app.py"}, []byte(`{"patch":"`+id+`"}`))
				if err == nil {
					_, err = s.Update(ctx, id, func(p *Patch) error { p.State = StateApplying; return nil })
				}
				if err == nil {
					_, err = s.Update(ctx, id, func(p *Patch) error {
						p.State, p.Diff = StateApplied, "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+"+id+"\n"
						p.Files = []FileChange{{Path: "src/f" + strconv.Itoa(i%1000) + ".py", Existed: true}}
						return nil
					})
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// heapInuse is the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestLongHistory: with a long history (PATCHD_HISTORY patches, 1,000,000
// by default; 100,000 with -short, 20,000 with -race), built through the store's API, Open
// takes about what it takes on an empty store, the heap after it does not
// hold the history, and Get, List and a filtered List are fast. Before the
// index was on disk, Open replayed every record and kept every patch in
// memory (about 2 KiB each).
func TestLongHistory(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	if raceOn {
		n = 20_000 // CI runs every test with -race, in one package's 10 minutes
	}
	if v := os.Getenv("PATCHD_HISTORY"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()

	emptyDir := t.TempDir()
	e, err := Open(emptyDir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, e, "only", "x")
	e.Close()
	openTime := func(dir string) (time.Duration, *Store) {
		best := time.Duration(1 << 62)
		var s *Store
		for range 3 {
			if s != nil {
				s.Close()
			}
			start := time.Now()
			var err error
			if s, err = Open(dir, Options{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		return best, s
	}
	emptyOpen, e := openTime(emptyDir)
	e.Close()

	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buildHistory(t, s, n)
	// Some live patches too: the queue comes back from index.db.
	for i := range 10 {
		mustSubmit(t, s, fmt.Sprint("live", i), "b")
	}
	built := time.Since(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	base := heapInuse()
	open, s := openTime(dir)
	defer s.Close()
	heap := int64(heapInuse()) - int64(base)
	t.Logf("%d patches built in %v; Open %v (empty store: %v); heap after Open %.1f MiB",
		n, built.Round(time.Millisecond), open, emptyOpen, float64(heap)/(1<<20))

	if st := s.Stats(); st.Total != n+10 || st.Applied != n || st.Queued != 10 {
		t.Errorf("Stats after reopen = %+v, want %d applied and 10 queued", st, n)
	}
	if limit := max(100*time.Millisecond, 5*emptyOpen); open > limit {
		t.Errorf("Open of %d patches took %v, over %v (empty store: %v)", n, open, limit, emptyOpen)
	}
	if heap > 32<<20 {
		t.Errorf("heap after Open of %d patches grew by %.1f MiB, want at most 32", n, float64(heap)/(1<<20))
	}
	timed := func(what string, fn func() bool) {
		t.Helper()
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			if !fn() {
				t.Errorf("%s: wrong answer", what)
				return
			}
			best = min(best, time.Since(start))
		}
		t.Logf("%s: %v", what, best)
		limit := 5 * time.Millisecond
		if raceOn {
			limit *= 5 // the race detector's slowdown
		}
		if best > limit {
			t.Errorf("%s took %v, want at most %v", what, best, limit)
		}
	}
	mid := fmt.Sprintf("h%07d", n/2)
	timed("Get", func() bool { p, ok := s.Get(mid); return ok && p.State == StateApplied && p.Diff != "" })
	timed("List", func() bool { ps, next := s.List("", 50, ""); return len(ps) == 50 && next != "" })
	timed("List applied", func() bool { ps, _ := s.List("", 50, StateApplied); return len(ps) == 50 })
	timed("List queued", func() bool { ps, _ := s.List("", 50, StateQueued); return len(ps) == 10 })
	timed("List failed", func() bool { ps, _ := s.List("", 50, StateFailed); return len(ps) == 0 })
	timed("List middle page", func() bool {
		ps, _ := s.List(strconv.Itoa(n/2), 50, StateApplied)
		return len(ps) == 50 && ps[0].Seq == uint64(n/2-1)
	})
	if p, err := s.Next(ctx); err != nil || p.ID != "live0" {
		t.Errorf("Next = %s, %v; want live0", p.ID, err)
	}
}
