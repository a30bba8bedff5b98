package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestStateCodes: the state numbers index.db keeps follow States, 1 up,
// and no other string has one.
func TestStateCodes(t *testing.T) {
	for i, st := range States() {
		if got := stateCode(st); int(got) != i+1 {
			t.Errorf("stateCode(%s) = %d, want %d", st, got, i+1)
		}
	}
	if got := stateCode("bogus"); got != 0 {
		t.Errorf("stateCode(bogus) = %d, want 0", got)
	}
}

// cursors is how many cursors index.db's transactions have opened so far
// (a bucket opened and each Get take one): those that ended, and the
// lookup snapshot's.
func cursors(s *Store) int64 {
	st := s.db.Stats()
	n := st.TxStats.GetCursorCount()
	s.snap.mu[0].RLock() // one shard: the snapshot changes under all
	defer s.snap.mu[0].RUnlock()
	if s.snap.tx != nil {
		ts := s.snap.tx.Stats()
		n += ts.GetCursorCount()
	}
	return n
}

// TestNewIDLookup: learning that index.db does not have a new id looks
// only in the ids bucket while index.db holds no tombstone, in the lookup
// snapshot after a checkpoint, else in one transaction; once a checkpoint
// wrote one, an expired id is found expired by that lookup, before and
// after a reopen.
func TestNewIDLookup(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		// b old enough to expire once failed.
		p := Patch{ID: id}
		if id == "b" {
			p.ReceivedAt = time.Now().Add(-2 * time.Hour)
		}
		if _, _, err := s.Submit(ctx, p, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	// The ids bucket alone: opening it from the root and the Get.
	probe := func(id string) (lookup, int64) {
		t.Helper()
		c0 := cursors(s)
		l := s.prefind(id)
		if l.err != nil {
			t.Fatalf("prefind(%s) = %v", id, l.err)
		}
		return l, cursors(s) - c0
	}
	// In the lookup snapshot, the ids bucket's Get: 1 cursor (the
	// tombstones' bucket looked at too would make 2).
	const idsOnly = 1
	if _, n := probe("new-1"); n != idsOnly {
		t.Errorf("without tombstones, a new id's lookup opened %d cursors, want %d: only the ids bucket", n, idsOnly)
	}
	if s.dbTombs.Load() {
		t.Fatal("no tombstone written, yet dbTombs is set")
	}

	mustUpdate(t, s, "b", setState(StateFailed))
	if res, err := s.Prune(ctx, PrunePolicy{MaxAge: time.Hour}, false); err != nil || !slices.Equal(expiredIDs(res.Expired), []string{"b"}) {
		t.Fatalf("Prune = %v, %v; want b expired", expiredIDs(res.Expired), err)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if !s.dbTombs.Load() {
		t.Fatal("a checkpoint wrote a tombstone, yet dbTombs is not set")
	}
	if l, _ := probe("b"); l.expiredAt == 0 {
		t.Error("index.db's lookup of the expired b: no tombstone found")
	}
	if _, n := probe("new-2"); n <= idsOnly {
		t.Errorf("with tombstones, a new id's lookup opened %d cursors, no more than the %d of the ids bucket alone: the tombstones were not looked at", n, idsOnly)
	}
	check := func(when string) {
		t.Helper()
		var ee *ExpiredError
		if _, _, err := s.Submit(ctx, Patch{ID: "b"}, []byte("again")); !errors.As(err, &ee) {
			t.Errorf("%s: Submit(b) again = %v, want an ExpiredError", when, err)
		}
		if _, created, err := s.Submit(ctx, Patch{ID: "new-" + when}, []byte("x")); err != nil || !created {
			t.Errorf("%s: Submit of a new id = %v, %v", when, created, err)
		}
	}
	check("before")
	s.Close()
	s = openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if !s.dbTombs.Load() {
		t.Fatal("after a reopen of an index.db with a tombstone, dbTombs is not set")
	}
	check("after")

	// A store without any: a reopen leaves it unset, and the lookup of
	// a new id opens no more cursors than the first one above, in the
	// snapshot begun at Open (no transaction of its own) before the first
	// checkpoint as after it.
	dir2 := t.TempDir()
	s2 := openTest(t, dir2, Options{NoSync: true, CheckpointInterval: time.Hour})
	mustSubmit(t, s2, "a", "a")
	s2.Close()
	s2 = openTest(t, dir2, Options{NoSync: true, CheckpointInterval: time.Hour})
	if s2.dbTombs.Load() {
		t.Error("reopened without tombstones, yet dbTombs is set")
	}
	c0, tx0 := cursors(s2), readTxs(s2)
	s2.prefind("new")
	if n := cursors(s2) - c0; n != idsOnly {
		t.Errorf("before the first checkpoint, a new id's lookup opened %d cursors, want %d", n, idsOnly)
	}
	if n := readTxs(s2) - tx0; n != 0 {
		t.Errorf("before the first checkpoint, a new id's lookup began %d read transactions, want 0 (the snapshot begun at Open)", n)
	}
	if err := s2.checkpoint(); err != nil {
		t.Fatal(err)
	}
	c0 = cursors(s2)
	s2.prefind("new")
	if n := cursors(s2) - c0; n != idsOnly {
		t.Errorf("after a checkpoint, a new id's lookup opened %d cursors, want %d", n, idsOnly)
	}
}

// TestCheckpointFreshThenUpdated: a patch a checkpoint wrote as queued (in
// the live bucket) and the next one as applied is in index.db once, under
// its state now, with nothing left in the live bucket; so is one put and
// finished between two checkpoints; and one retried after failing is in
// the live bucket only, under its new Seq, its old keys gone.
func TestCheckpointFreshThenUpdated(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	ctx := context.Background()
	mustSubmit(t, s, "q", "q")
	mustSubmit(t, s, "f", "f")
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "q", setState(StateApplying))
	mustUpdate(t, s, "q", setState(StateApplied))
	mustSubmit(t, s, "n", "n")
	mustUpdate(t, s, "n", setState(StateApplying))
	mustUpdate(t, s, "n", setState(StateApplied))
	mustUpdate(t, s, "f", setState(StateFailed))
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if _, created, err := s.Submit(ctx, Patch{ID: "f"}, []byte("f2")); err != nil || !created {
		t.Fatalf("Submit(f) anew = %v, %v", created, err)
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := map[State][]string{StateApplied: {"n", "q"}}
	for _, st := range States() {
		var got []string
		err := s.view(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bState(st)); b != nil {
				return b.ForEach(func(_, v []byte) error { got = append(got, string(v)); return nil })
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want[st]) {
			t.Errorf("index.db lists %v as %s, want %v", got, st, want[st])
		}
	}
	var seqs, idsN int
	err := s.view(func(tx *bolt.Tx) error {
		seqs, idsN = tx.Bucket(bSeq).Stats().KeyN, tx.Bucket(bIDs).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, l := range liveIndex(t, s) {
		live = append(live, fmt.Sprintf("%s@%d/%d %s", l.id, l.key, l.e.seq, l.e.state))
	}
	if seqs != 2 || idsN != 2 {
		t.Errorf("index.db's seq and ids buckets have %d and %d keys, want 2 (n and q; f's gone)", seqs, idsN)
	}
	if want := []string{"f@4/4 queued"}; !slices.Equal(live, want) {
		t.Errorf("index.db's live bucket has %q, want %q", live, want)
	}
}
