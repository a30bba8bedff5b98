package store

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestPreallocatedJournal: the journal is zeroed ahead of its records, so
// that commits overwrite allocated space (fdatasync) instead of growing the
// file (fsync). The zeros are not damage: a reopen keeps them silently and
// the next records follow the last ones; a write torn inside them is
// dropped like any torn tail.
func TestPreallocatedJournal(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := openTest(t, dir, Options{Logger: log})
	for i := range 10 {
		mustSubmit(t, s, "a"+itoa(i), strings.Repeat("x", 500))
	}
	path := activeSegment(t, dir)
	fi, _ := os.Stat(path)
	end := recordsEnd(t, path)
	if fi.Size() <= end || fi.Size()%preallocChunk != 0 {
		t.Errorf("journal is %d bytes with records ending at %d; want zeros ahead, to a multiple of %d", fi.Size(), end, preallocChunk)
	}
	s.Close()

	s = openTest(t, dir, Options{Logger: log})
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Errorf("reopen changed the journal from %d to %d bytes, want the zeros kept", fi.Size(), fi2.Size())
	}
	mustSubmit(t, s, "b0", "after the reopen")
	s.Close()
	if offs := recordOffsets(t, path); len(offs) != 11 {
		t.Errorf("journal holds %d records after a reopen and a submit, want 11", len(offs))
	}
	if logs.Len() > 0 {
		t.Errorf("opening a journal with zeros ahead logged:\n%s", logs.String())
	}

	// A write cut short inside the zeros: the half record is dropped.
	end = recordsEnd(t, path)
	rec, _ := encodeRecord(kindPut, 99, []byte(`{"id":"torn","s":"queued"}`), []byte("body"))
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(rec[:len(rec)/2], end)
	f.Close()
	logs.Reset()
	s = openTest(t, dir, Options{Logger: log})
	if _, ok := s.Get("torn"); ok {
		t.Errorf("a half-written record came back")
	}
	if !strings.Contains(logs.String(), "journal tail damaged") {
		t.Errorf("a torn record inside the zeros was not reported: %q", logs.String())
	}
	if _, _, err := s.Submit(context.Background(), Patch{ID: "c0"}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Total != 12 {
		t.Errorf("after the torn write and a submit the store holds %d patches, want 12", st.Total)
	}
}
