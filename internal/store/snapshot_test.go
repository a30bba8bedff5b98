package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// readTxs is how many read transactions index.db has begun so far.
func readTxs(s *Store) int {
	return s.db.Stats().TxN
}

// TestLookupSnapshot: after a checkpoint, learning that index.db does not
// have a new id begins no read transaction of its own (the lookup
// snapshot is shared), a patch the checkpoint wrote and dropped from
// memory is found there, and a patch the next checkpoint wrote too.
func TestLookupSnapshot(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, CheckpointInterval: time.Hour})
	finished := func(id string) {
		t.Helper()
		mustSubmit(t, s, id, "body of "+id)
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, setState(StateApplied))
		if err := s.checkpoint(); err != nil {
			t.Fatal(err)
		}
		if _, in := s.inOverlay([]byte(id)); in {
			t.Fatalf("%s still in memory after its checkpoint", id)
		}
	}
	finished("a")
	n0 := readTxs(s)
	for i := range 100 {
		if l := s.prefind(fmt.Sprintf("new-%d", i)); l.ok || l.err != nil {
			t.Fatalf("prefind(new-%d) = ok %v, %v; want not found", i, l.ok, l.err)
		}
	}
	if l := s.prefind("a"); !l.ok || l.err != nil || l.e.p.State != StateApplied {
		t.Fatalf("prefind(a) = ok %v state %q, %v; want applied", l.ok, l.e.p.State, l.err)
	}
	if n := readTxs(s) - n0; n != 0 {
		t.Errorf("101 lookups after a checkpoint began %d read transactions, want 0", n)
	}
	finished("b")
	n0 = readTxs(s)
	for _, id := range []string{"a", "b"} {
		if l := s.prefind(id); !l.ok || l.err != nil {
			t.Fatalf("prefind(%s) after the second checkpoint = ok %v, %v; want found", id, l.ok, l.err)
		}
	}
	if l := s.prefind("new"); l.ok || l.err != nil {
		t.Fatalf("prefind(new) = ok %v, %v; want not found", l.ok, l.err)
	}
	if n := readTxs(s) - n0; n != 0 {
		t.Errorf("lookups after the second checkpoint began %d read transactions, want 0", n)
	}
	if _, created, err := s.Submit(context.Background(), Patch{ID: "a", Role: "ui_patch", Target: "src/a"}, []byte("body of a")); err != nil || created {
		t.Errorf("Submit(a) again = created %v, %v; want the stored patch", created, err)
	}
	if _, _, err := s.Submit(context.Background(), Patch{ID: "b"}, []byte("another body")); !errors.Is(err, ErrConflict) {
		t.Errorf("Submit(b) with another body = %v, want ErrConflict", err)
	}
}

// waitOrDump waits for wg; if that takes longer than limit (a deadlock,
// not slowness: limit is generous), it ends the test binary with every
// goroutine's stack: a panic outside the test's goroutine, as the test's
// cleanup (Close) would wait forever too.
func waitOrDump(wg *sync.WaitGroup, limit time.Duration, what string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		msg := fmt.Sprintf("%s not done after %v (deadlock?):\n%s", what, limit, buf)
		go func() { panic(msg) }()
		select {}
	}
}

// TestLookupsAcrossCheckpoints: Submits of new ids and of ids submitted
// before (same body: the stored patch; another: a conflict) from many
// goroutines while checkpoints run back to back, index.db mapped with
// 32 KiB at first so that the checkpoints grow it past its mapping
// several times (a remap waits for every read transaction: one held
// across a write would deadlock). Ids checkpointed and dropped from
// memory are still found.
func TestLookupsAcrossCheckpoints(t *testing.T) {
	const (
		writers = 8
		perW    = 150
	)
	s := openTest(t, t.TempDir(), Options{NoSync: true, CheckpointInterval: time.Hour, mmapSize: 32 << 10})
	ctx := context.Background()
	var (
		wg, ckWG    sync.WaitGroup
		stop        atomic.Bool
		checkpoints atomic.Int64
		fromDisk    atomic.Int64
	)
	ckWG.Go(func() {
		for !stop.Load() {
			if err := s.checkpoint(); err != nil {
				t.Error(err)
				return
			}
			checkpoints.Add(1)
			time.Sleep(time.Millisecond) // pacing: let the submits change something
		}
	})
	for w := range writers {
		wg.Go(func() {
			id := func(n int) string { return fmt.Sprintf("w%d-%d", w, n) }
			for n := range perW {
				p, created, err := s.Submit(ctx, Patch{ID: id(n)}, []byte(id(n)))
				if err != nil || !created {
					t.Errorf("Submit(%s) = created %v, %v; want created", id(n), created, err)
					return
				}
				for _, st := range []State{StateApplying, StateApplied} {
					if _, err := s.Update(ctx, p.ID, func(p *Patch) error { p.State = st; return nil }); err != nil {
						t.Errorf("Update(%s) = %v", p.ID, err)
						return
					}
				}
				if n < 5 {
					continue
				}
				old := id(n - 5)
				if _, in := s.inOverlay([]byte(old)); !in {
					fromDisk.Add(1)
				}
				if q, created, err := s.Submit(ctx, Patch{ID: old}, []byte(old)); err != nil || created || q.State != StateApplied {
					t.Errorf("Submit(%s) again = created %v state %q, %v; want the stored patch, applied", old, created, q.State, err)
					return
				}
				if _, _, err := s.Submit(ctx, Patch{ID: old}, []byte("other")); !errors.Is(err, ErrConflict) {
					t.Errorf("Submit(%s) with another body = %v, want ErrConflict", old, err)
					return
				}
			}
		})
	}
	waitOrDump(&wg, 2*time.Minute, "submits")
	stop.Store(true)
	waitOrDump(&ckWG, time.Minute, "the checkpoints")
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Every id is now in index.db only; each is found once more.
	for w := range writers {
		for n := range perW {
			id := fmt.Sprintf("w%d-%d", w, n)
			if _, in := s.inOverlay([]byte(id)); in {
				t.Fatalf("%s still in memory after the last checkpoint", id)
			}
			if _, created, err := s.Submit(ctx, Patch{ID: id}, []byte(id)); err != nil || created {
				t.Fatalf("Submit(%s) after the last checkpoint = created %v, %v; want the stored patch", id, created, err)
			}
		}
	}
	var size int64
	if err := s.view(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d checkpoints, %d repeated ids found in index.db only, index.db %d KiB", checkpoints.Load(), fromDisk.Load(), size>>10)
	if size <= 64<<10 {
		t.Errorf("index.db is %d bytes: not grown past 64 KiB, so no remap was tested", size)
	}
	if checkpoints.Load() < 10 {
		t.Errorf("%d checkpoints ran during the submits, want at least 10", checkpoints.Load())
	}
}

// TestCloseWithLookupsInFlight: Close while goroutines look new ids up and
// submit them: each gets an answer or ErrClosed, and Close returns.
func TestCloseWithLookupsInFlight(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSync: true, CheckpointInterval: time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		// Applied: index.db's ids bucket has them (a live patch is in
		// its live bucket and in memory, never looked up in index.db).
		id := fmt.Sprintf("old-%d", i)
		mustSubmit(t, s, id, "x")
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, setState(StateApplied))
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				l := s.prefind(id)
				if errors.Is(l.err, ErrClosed) {
					return
				}
				if l.err != nil || l.ok {
					t.Errorf("prefind(%s) = ok %v, %v; want not found or ErrClosed", id, l.ok, l.err)
					return
				}
				if l := s.prefind(fmt.Sprintf("old-%d", i%50)); l.err == nil && !l.ok {
					t.Errorf("prefind(old-%d) = not found", i%50)
					return
				}
				lookups.Add(1)
				if i%4 == 0 {
					if _, _, err := s.Submit(ctx, Patch{ID: id}, []byte("x")); err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("Submit(%s) = %v, want created or ErrClosed", id, err)
						return
					}
				}
			}
		})
	}
	// Let the lookups run across a few checkpoints first.
	for lookups.Load() < 2000 && !t.Failed() {
		runtime.Gosched()
	}
	var closeWG sync.WaitGroup
	closeWG.Go(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	waitOrDump(&closeWG, time.Minute, "Close")
	waitOrDump(&wg, time.Minute, "the lookups")
}

// TestDropSegmentsRenewsSnapshot: dropping segments writes index.db, so it
// retires the lookup snapshot first and begins the next after: the
// snapshot then sees index.db as it is (its transaction is the newest),
// and expired ids are still found expired in it.
func TestDropSegmentsRenewsSnapshot(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, SegmentBytes: 8 << 10, CheckpointInterval: time.Hour, mmapSize: 32 << 10})
	ctx := context.Background()
	for i := range 100 {
		id := fmt.Sprint("x", i)
		mustSubmit(t, s, id, "body of "+id+" padded to fill the segments sooner")
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, func(p *Patch) { p.State, p.Error = StateFailed, "no" })
	}
	if _, err := s.Prune(ctx, PrunePolicy{MaxCount: 10}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	var (
		n   int
		err error
		wg  sync.WaitGroup
	)
	// With the snapshot held, growing index.db past its mapping would
	// wait forever.
	wg.Go(func() { n, err = s.dropSegments() })
	waitOrDump(&wg, time.Minute, "dropSegments")
	if err != nil || n == 0 {
		t.Fatalf("dropSegments = %d, %v; want some dropped", n, err)
	}
	var newest int
	if err := s.view(func(tx *bolt.Tx) error { newest = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	s.snap.mu[0].RLock()
	snap := -1
	if s.snap.tx != nil {
		snap = s.snap.tx.ID()
	}
	s.snap.mu[0].RUnlock()
	if snap != newest {
		t.Errorf("after dropSegments the lookup snapshot is of transaction %d, index.db's newest is %d", snap, newest)
	}
	if l := s.prefind("x0"); l.expiredAt == 0 || l.err != nil {
		t.Errorf("prefind(x0) = expired at %d, %v; want expired", l.expiredAt, l.err)
	}
}
