package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wantBlob checks that Blob(id, name) returns data, or ErrNotFound when
// data is nil.
func wantBlob(t *testing.T, s *Store, when, id, name string, data []byte) {
	t.Helper()
	got, err := s.Blob(id, name)
	if data == nil {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Blob(%s, %s) = %d bytes, %v; want ErrNotFound", when, id, name, len(got), err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s: Blob(%s, %s) = %q, %v; want %q", when, id, name, got, err, data)
	}
}

// TestInlineBlobs: blobs stored with an update come back from Blob after
// later updates, a reopen and later segments; a new attempt at applying
// drops the blobs of the earlier one; a blob file of the same patch is
// still found by name.
func TestInlineBlobs(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	a, b := []byte("old content of a\n"), bytes.Repeat([]byte("b\x00\xff"), 5000)
	mustSubmit(t, s, "P1", "body of P1")
	mustSubmit(t, s, "P2", "body of P2")
	if _, err := s.UpdateBlobs(ctx, "P1", []Blob{{"0.before", a}, {"1.before", b}, {"2.before", []byte{}}}, func(p *Patch) error {
		p.State = StateApplying
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob("P1", "3.before", []byte("as a file")); err != nil {
		t.Fatal(err)
	}
	check := func(when string, s *Store) {
		t.Helper()
		wantBlob(t, s, when, "P1", "0.before", a)
		wantBlob(t, s, when, "P1", "1.before", b)
		wantBlob(t, s, when, "P1", "2.before", []byte{})
		wantBlob(t, s, when, "P1", "3.before", []byte("as a file"))
		wantBlob(t, s, when, "P1", "4.before", nil)
		wantBlob(t, s, when, "P2", "0.before", nil)
		if body, err := s.Body("P1"); err != nil || string(body) != "body of P1" {
			t.Errorf("%s: Body(P1) = %q, %v", when, body, err)
		}
	}
	check("after the update", s)
	mustUpdate(t, s, "P1", func(p *Patch) { p.State, p.Diff = StateApplied, "the diff" })
	check("after a later update", s)
	s.Close()
	s = openTest(t, dir, Options{})
	check("after a reopen", s)
	if p, _ := s.Get("P1"); p.State != StateApplied || p.Diff != "the diff" {
		t.Errorf("after a reopen P1 = %s %q, want applied with its diff", p.State, p.Diff)
	}
	// Later records in segments of their own: P1's blobs stay in the first.
	s.Close()
	s = openTest(t, dir, Options{SegmentBytes: 1})
	for i := range 3 {
		mustUpdate(t, s, "P2", func(p *Patch) { p.Error = fmt.Sprint("note ", i) })
	}
	check("after records in later segments", s)
	s.Close()
	s = openTest(t, dir, Options{})
	check("after a reopen of several segments", s)

	// A second attempt at applying replaces the blobs of the first.
	mustUpdate(t, s, "P2", setState(StateApplying))
	if _, err := s.UpdateBlobs(ctx, "P2", []Blob{{"0.before", []byte("first try")}}, func(p *Patch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	wantBlob(t, s, "first attempt", "P2", "0.before", []byte("first try"))
	mustUpdate(t, s, "P2", setState(StateQueued))
	mustUpdate(t, s, "P2", setState(StateApplying))
	wantBlob(t, s, "second attempt without inline blobs", "P2", "0.before", nil)
	s.Close()
	s = openTest(t, dir, Options{})
	wantBlob(t, s, "second attempt, reopened", "P2", "0.before", nil)
	check("P1 after P2's attempts", s)
}

func TestUpdateBlobsRefusesBadNames(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	mustSubmit(t, s, "P", "x")
	for _, blobs := range [][]Blob{{{"", []byte("x")}}, {{"a", nil}, {"a", []byte("y")}}} {
		_, err := s.UpdateBlobs(context.Background(), "P", blobs, func(p *Patch) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "update P: ") {
			t.Errorf("UpdateBlobs(%+v) error = %v, want one naming the patch", blobs, err)
		}
	}
}
