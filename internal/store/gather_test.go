package store

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestGathererWant: the committer waits only for records it has seen
// come at once, for half as many, and forgets that after a pause.
func TestGathererWant(t *testing.T) {
	now := time.Unix(1000, 0)
	var g gatherer
	if w := g.want(now); w != 0 {
		t.Fatalf("a new store waits for %d records, want 0", w)
	}
	for range 100 {
		g.released(1, now)
		if w := g.want(now); w != 0 {
			t.Fatalf("one record outstanding at a time: waits for %d, want 0 (a lone client must never wait)", w)
		}
	}
	g.released(6, now)
	if w := g.want(now); w != 0 {
		t.Errorf("6 outstanding: waits for %d, want 0 (3 is under minGather)", w)
	}
	g.released(40, now)
	if w := g.want(now); w != 20 {
		t.Errorf("40 outstanding: waits for %d, want 20", w)
	}
	// The estimate decays by an eighth a batch: 40 * (7/8)^10 = 10.5.
	for range 10 {
		g.released(1, now)
	}
	if w := g.want(now); w != 5 {
		t.Errorf("10 batches of 1 after 40: waits for %d, want 5", w)
	}
	for range 10 {
		g.released(1, now)
	}
	if w := g.want(now); w != 0 {
		t.Errorf("20 batches of 1 after 40: waits for %d, want 0", w)
	}
	g.released(1000, now)
	if w := g.want(now); w != maxGather {
		t.Errorf("1000 outstanding: waits for %d, want %d", w, maxGather)
	}
	// A pause: a client that comes back alone does not wait for the
	// crowd that has gone.
	if w := g.want(now.Add(gatherIdle + time.Millisecond)); w != 0 {
		t.Errorf("after %s without a batch: waits for %d, want 0", gatherIdle, w)
	}
}

// TestGatherOnlyUnderConcurrency: with real fsyncs, one client's records
// are written one per batch and the committer never waits for more; with
// 32 clients it does, and batches hold several records.
func TestGatherOnlyUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if _, _, err := s.Submit(ctx, Patch{ID: "lone" + strconv.Itoa(i)}, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	s.mu.Lock()
	gathers := s.gathers
	s.mu.Unlock()
	if gathers != 0 || st.Batches != st.Records {
		t.Fatalf("one client: the committer waited before %d batches; %d records in %d batches (want 0, and one record a batch)", gathers, st.Records, st.Batches)
	}

	const clients, each = 32, 40
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Submit(ctx, Patch{ID: "c" + strconv.Itoa(c) + "-" + strconv.Itoa(i)}, []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st2 := s.Stats()
	s.mu.Lock()
	gathers = s.gathers
	s.mu.Unlock()
	records, batches := st2.Records-st.Records, st2.Batches-st.Batches
	if records != clients*each {
		t.Fatalf("%d records written, want %d", records, clients*each)
	}
	if gathers == 0 || records < 4*batches {
		t.Errorf("32 clients: the committer waited before %d batches; %d records in %d batches (want some, and at least 4 records a batch)", gathers, records, batches)
	}
	t.Logf("32 clients: %d records in %d batches, %d gathered", records, batches, gathers)
}
