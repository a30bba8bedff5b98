package store

import (
	"context"
	"slices"
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
	// Each step releases these batches (records outstanding at each
	// release), then asks how many to wait for (every: after each
	// release too).
	for _, st := range []struct {
		what     string
		released []int
		every    bool
		at       time.Time
		want     int
	}{
		{"a new store", nil, false, now, 0},
		{"one record outstanding at a time (a lone client must never wait)", slices.Repeat([]int{1}, 100), true, now, 0},
		{"6 outstanding (3 is under minGather)", []int{6}, false, now, 0},
		{"40 outstanding", []int{40}, false, now, 20},
		// The estimate decays by an eighth a batch: 40 * (7/8)^10 = 10.5.
		{"10 batches of 1 after 40", slices.Repeat([]int{1}, 10), false, now, 5},
		{"20 batches of 1 after 40", slices.Repeat([]int{1}, 10), false, now, 0},
		{"1000 outstanding", []int{1000}, false, now, maxGather},
		// A pause: a client that comes back alone does not wait for the
		// crowd that has gone.
		{"after gatherIdle without a batch", nil, false, now.Add(gatherIdle + time.Millisecond), 0},
	} {
		for _, n := range st.released {
			g.released(n, now)
			if st.every && g.want(now) != 0 {
				t.Fatalf("%s: waits for %d after a release, want 0", st.what, g.want(now))
			}
		}
		if w := g.want(st.at); w != st.want {
			t.Errorf("%s: waits for %d records, want %d", st.what, w, st.want)
		}
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
