package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeLegacyJournal writes dir/journal as patchd wrote it before the
// journal was segmented (one file, "patchdJ1" then records, zeros written
// ahead): P1 applied with a diff and inline blobs, P2 failed, P3 queued.
// The record format did not change, so the encoder writes it.
func writeLegacyJournal(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0).UTC()
	buf := []byte(fileHeader)
	add := func(kind byte, p Patch, blobs []diskBlob, body []byte) {
		meta, err := encodeMeta(p, blobs)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := encodeRecord(kind, p.Seq, meta, body)
		buf = append(buf, rec...)
	}
	p1 := Patch{ID: "P1", Seq: 1, Hash: "h1", Role: "ui_patch", State: StateQueued, ReceivedAt: at}
	add(kindPut, p1, nil, []byte("body one"))
	p2 := Patch{ID: "P2", Seq: 2, Hash: "h2", State: StateQueued, ReceivedAt: at}
	add(kindPut, p2, nil, []byte("body two"))
	p3 := Patch{ID: "P3", Seq: 3, Hash: "h3", State: StateQueued, ReceivedAt: at}
	add(kindPut, p3, nil, []byte("body three"))
	p1.State, p1.StartedAt = StateApplying, at
	add(kindUpdate, p1, []diskBlob{{Name: "a", Len: 3}, {Name: "b", Len: 2}}, []byte("AAABB"))
	p1.State, p1.FinishedAt, p1.Diff = StateApplied, at, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
	p1.Files = []FileChange{{Path: "x", OldHash: "o", NewHash: "n", Existed: true}}
	add(kindUpdate, p1, nil, nil)
	p2.State, p2.FinishedAt, p2.Error, p2.Code = StateFailed, at, "no match", "no_match"
	add(kindUpdate, p2, nil, nil)
	buf = append(buf, make([]byte, 4096)...) // written ahead
	if err := os.WriteFile(filepath.Join(dir, "journal"), buf, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyJournal: a state directory written before segments opens with
// every patch, body, blob and diff, its journal moved to seg/00000001.jnl,
// and goes on taking patches.
func TestLegacyJournal(t *testing.T) {
	dir := t.TempDir()
	writeLegacyJournal(t, dir)
	check := func(when string, s *Store) {
		t.Helper()
		p, ok := s.Get("P1")
		if !ok || p.State != StateApplied || p.Diff == "" || len(p.Files) != 1 || p.Seq != 1 {
			t.Fatalf("%s: Get(P1) = %+v, %v", when, p, ok)
		}
		wantBlob(t, s, when, "P1", "a", []byte("AAA"))
		wantBlob(t, s, when, "P1", "b", []byte("BB"))
		if b, err := s.Body("P3"); err != nil || string(b) != "body three" {
			t.Errorf("%s: Body(P3) = %q, %v", when, b, err)
		}
		if p, _ := s.Get("P2"); p.State != StateFailed || p.Code != "no_match" {
			t.Errorf("%s: Get(P2) = %+v", when, p)
		}
		if st := s.Stats(); st.Applied < 1 || st.Failed != 1 {
			t.Errorf("%s: Stats = %+v", when, st)
		}
	}
	s := openTest(t, dir, Options{})
	check("after migration", s)
	if n, err := s.Next(context.Background()); err != nil || n.ID != "P3" {
		t.Errorf("Next = %+v, %v; want P3", n, err)
	}
	mustSubmit(t, s, "P4", "body four")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "journal")); !os.IsNotExist(err) {
		t.Errorf("legacy journal still there after Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "seg", "00000001.jnl")); err != nil {
		t.Errorf("legacy journal not moved to seg/00000001.jnl: %v", err)
	}
	s = openTest(t, dir, Options{})
	check("after a reopen", s)
	if p, ok := s.Get("P4"); !ok || p.Seq != 4 {
		t.Errorf("Get(P4) = %+v, %v; want seq 4", p, ok)
	}
}
