package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWalk: the walk Prune reads the history with, and List, give every
// patch once, in Seq order, whether its entry is only in index.db, in the
// overlay only (queued, never checkpointed), or in both (changed since the
// checkpoint: the overlay's entry is the one given).
func TestWalk(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, CheckpointInterval: 1 << 62})
	ctx := context.Background()
	const n = 1500
	for i := range n {
		if _, _, err := s.Submit(ctx, Patch{ID: fmt.Sprintf("w%04d", i)}, []byte("b")); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 { // every third stays queued, in the overlay
			mustUpdate(t, s, fmt.Sprintf("w%04d", i), setState(StateFailed))
		}
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Changed since the checkpoint: in the overlay again, and in index.db.
	for i := 1; i < n; i += 7 {
		if i%3 != 0 {
			mustUpdate(t, s, fmt.Sprintf("w%04d", i), func(p *Patch) { p.Error = "again" })
		}
	}
	for _, chunk := range []int{1, 7, 100, 1024} {
		var asc, desc []uint64
		for from := uint64(0); ; {
			items, err := s.walk(from, true, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) == 0 {
				break
			}
			for _, it := range items {
				asc = append(asc, it.p.Seq)
			}
			from = items[len(items)-1].p.Seq
		}
		for from := uint64(math.MaxUint64); ; {
			items, err := s.walk(from, false, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) == 0 {
				break
			}
			for _, it := range items {
				desc = append(desc, it.p.Seq)
			}
			from = items[len(items)-1].p.Seq
		}
		var want []uint64
		for i := range n {
			want = append(want, uint64(i+1))
		}
		if !slices.Equal(asc, want) {
			t.Errorf("walking up %d at a time gave %d patches (%v...), want Seqs 1 to %d once each", chunk, len(asc), asc[:min(len(asc), 10)], n)
		}
		slices.Reverse(want)
		if !slices.Equal(desc, want) {
			t.Errorf("walking down %d at a time gave %d patches (%v...), want Seqs %d to 1 once each", chunk, len(desc), desc[:min(len(desc), 10)], n)
		}
		if got := listSeqs(s, chunk, ""); !slices.Equal(got, want) {
			t.Errorf("List %d at a time gave %d patches (%v...), want Seqs %d to 1 once each", chunk, len(got), got[:min(len(got), 10)], n)
		}
		var queued []uint64
		for _, seq := range want {
			if (seq-1)%3 == 0 {
				queued = append(queued, seq)
			}
		}
		if got := listSeqs(s, chunk, StateQueued); !slices.Equal(got, queued) {
			t.Errorf("List of the queued %d at a time gave %d patches (%v...), want every third, newest first", chunk, len(got), got[:min(len(got), 10)])
		}
	}
}

// listSeqs pages through List, limit at a time, for the Seqs.
func listSeqs(s *Store, limit int, state State) []uint64 {
	var seqs []uint64
	for _, p := range listPages(s, limit, state) {
		seqs = append(seqs, p.Seq)
	}
	return seqs
}

// TestFirstN: firstN keeps the n first entries in Seq order, up or down,
// whatever order they come in.
func TestFirstN(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		count, n, asc := r.IntN(300), r.IntN(40), r.IntN(2) == 0
		f := firstN{asc: asc, n: n}
		var seqs []uint64
		for range count {
			seq := r.Uint64N(1000)
			seqs = append(seqs, seq)
			f.add(&entry{p: Patch{Seq: seq}})
		}
		slices.Sort(seqs)
		if !asc {
			slices.Reverse(seqs)
		}
		var got []uint64
		for _, e := range f.es {
			got = append(got, e.p.Seq)
		}
		slices.Sort(got)
		want := slices.Clone(seqs[:min(n, len(seqs))])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("firstN(asc %v, n %d) of %d kept %v, want %v", asc, n, count, got, want)
		}
	}
}
