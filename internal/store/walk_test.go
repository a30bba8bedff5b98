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
		asc, desc := walkSeqs(t, s, true, chunk), walkSeqs(t, s, false, chunk)
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

// walkSeqs walks the whole history, chunk patches at a time, up or down,
// for the Seqs.
func walkSeqs(t *testing.T, s *Store, asc bool, chunk int) []uint64 {
	t.Helper()
	var seqs []uint64
	from := uint64(0)
	if !asc {
		from = math.MaxUint64
	}
	for {
		items, err := s.walk(from, asc, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			return seqs
		}
		for _, it := range items {
			seqs = append(seqs, it.p.Seq)
		}
		from = items[len(items)-1].p.Seq
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
			f.add(&entry{p: core{Seq: seq}})
		}
		slices.Sort(seqs)
		if !asc {
			slices.Reverse(seqs)
		}
		var got []uint64
		for _, e := range f.entries() {
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

// checkOverlay fails unless the overlay's slice holds exactly the entries
// of its map, each at its pos.
func checkOverlay(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idx.all) != len(s.idx.patches) {
		t.Fatalf("overlay: %d entries in the slice, %d in the map", len(s.idx.all), len(s.idx.patches))
	}
	for i, e := range s.idx.all {
		if e.pos != i || s.idx.patches[e.p.ID] != e {
			t.Fatalf("overlay: slice entry %d (%s, pos %d) is not the map's", i, e.p.ID, e.pos)
		}
	}
}

// TestOverlaySlice: the overlay's slice stays the map's entries through
// puts, checkpoints that drop finished patches, entries brought back from
// index.db by an update, new attempts at failed patches (in the overlay,
// or only in index.db), and a reopen; the walk and List see each patch
// once.
func TestOverlaySlice(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: 1 << 62})
	const n = 60
	for i := range n {
		id := fmt.Sprintf("o%02d", i)
		mustSubmit(t, s, id, "first")
		if i%2 == 0 {
			failPatch(t, s, id, "no match", "match_not_found")
		}
	}
	checkOverlay(t, s)
	if err := s.checkpoint(); err != nil { // drops the failed ones
		t.Fatal(err)
	}
	checkOverlay(t, s)
	for i := 0; i < n; i += 4 { // only in index.db: brought back
		if _, _, err := resubmit(t, s, fmt.Sprintf("o%02d", i), "second"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < n; i += 4 { // failed again while in the overlay, then a new attempt
		id := fmt.Sprintf("o%02d", i)
		if _, _, err := resubmit(t, s, id, "second"); err != nil {
			t.Fatal(err)
		}
		failPatch(t, s, id, "no match", "match_not_found")
		if _, _, err := resubmit(t, s, id, "third"); err != nil {
			t.Fatal(err)
		}
	}
	checkOverlay(t, s)
	for _, id := range []string{"o01", "o03"} {
		mustUpdate(t, s, id, setState(StateFailed))
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	checkOverlay(t, s)
	seen := map[string]int{}
	for _, p := range listPages(s, 7, "") {
		seen[p.ID]++
	}
	items, err := s.walk(0, true, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		seen[it.p.ID] += 10
	}
	if len(seen) != n {
		t.Errorf("List and the walk saw %d patches, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 11 {
			t.Errorf("%s: seen %d times by List and %d by the walk, want once each", id, c%10, c/10)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{NoSync: true, CheckpointInterval: 1 << 62})
	checkOverlay(t, s)
}
