package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// toV2 rewrites index.db in format 2: live patches' entries in ids, with
// keys in seq and state/<s>, a files bucket, format 2.
func toV2(t *testing.T, path string) {
	t.Helper()
	editIndex(t, path, func(tx *bolt.Tx) error {
		live := tx.Bucket(bLive)
		err := live.ForEach(func(k, v []byte) error {
			id, e, err := decodeLive(v)
			if err != nil {
				return err
			}
			return errors.Join(
				tx.Bucket(bIDs).Put([]byte(id), e.encode()),
				tx.Bucket(bSeq).Put(bytes.Clone(k), []byte(id)),
				tx.Bucket(bState(e.state)).Put(bytes.Clone(k), []byte(id)),
			)
		})
		if err != nil {
			return err
		}
		files, err := tx.CreateBucket([]byte("files"))
		if err != nil {
			return err
		}
		return errors.Join(
			files.Put([]byte("src/p"), []byte("p")),
			tx.DeleteBucket(bLive),
			tx.Bucket(bMeta).Put([]byte("v"), []byte{2}),
		)
	})
}

// editIndex changes the closed store's index.db at path in one bbolt
// transaction, as damage or an older patchd would have left it.
func editIndex(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// v2History builds a store in dir with build (checkpoints only at Close),
// closes it and rewrites its index.db in format 2; it returns the path.
func v2History(t *testing.T, dir string, build func(s *Store)) string {
	t.Helper()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	build(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, indexName)
	toV2(t, path)
	return path
}

// liveEntry is a key of index.db's live bucket, decoded.
type liveEntry struct {
	key uint64
	id  string
	e   dbEntry
}

// liveIndex is what index.db's live bucket holds, in its order.
func liveIndex(t *testing.T, s *Store) []liveEntry {
	t.Helper()
	var out []liveEntry
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bLive).ForEach(func(k, v []byte) error {
			id, e, err := decodeLive(v)
			out = append(out, liveEntry{binary.BigEndian.Uint64(k), id, e})
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIndexV2Migrated: an index.db of format 2 (live patches in ids) is
// moved to format 3 at Open, not rebuilt: the queued and applying patches
// are in the live bucket and in the queue, the applied one stays in ids,
// the files bucket is gone, and nothing is lost or duplicated.
func TestIndexV2Migrated(t *testing.T) {
	dir := t.TempDir()
	path := v2History(t, dir, func(s *Store) {
		mustSubmit(t, s, "p", "p")
		mustUpdate(t, s, "p", setState(StateApplying))
		mustUpdate(t, s, "p", setState(StateApplied))
		mustSubmit(t, s, "a", "a")
		mustUpdate(t, s, "a", setState(StateApplying))
		mustSubmit(t, s, "q", "q")
	})

	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if _, err := os.Stat(path + ".bad"); err == nil {
		t.Fatal("index.db of format 2 was moved aside and rebuilt, want it migrated")
	}
	var live, ids []string
	for _, l := range liveIndex(t, s) {
		live = append(live, l.id+" "+string(l.e.state))
	}
	var version []byte
	hasFiles := true
	err := s.view(func(tx *bolt.Tx) error {
		version = bytes.Clone(tx.Bucket(bMeta).Get([]byte("v")))
		hasFiles = tx.Bucket([]byte("files")) != nil
		return tx.Bucket(bIDs).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(version, []byte{indexVersion}) || hasFiles {
		t.Errorf("after Open: format %v, files bucket %v; want [%d], none", version, hasFiles, indexVersion)
	}
	if want := []string{"a applying", "q queued"}; !slices.Equal(live, want) {
		t.Errorf("live bucket has %q, want %q", live, want)
	}
	if want := []string{"p"}; !slices.Equal(ids, want) {
		t.Errorf("ids bucket has %q, want %q", ids, want)
	}
	for id, st := range map[string]State{"p": StateApplied, "a": StateApplying, "q": StateQueued} {
		if p, ok := s.Get(id); !ok || p.State != st {
			t.Errorf("Get(%s) = %v %q, want %q", id, ok, p.State, st)
		}
	}
	if ps, _ := s.List("", 10, StateQueued); len(ps) != 1 || ps[0].ID != "q" {
		t.Errorf("List(queued) = %d patches, want q", len(ps))
	}
	if ps, _ := s.List("", 10, ""); len(ps) != 3 {
		t.Errorf("List() = %d patches, want 3", len(ps))
	}
	if st := s.Stats(); st.Queued != 1 || st.Applying != 1 || st.Applied != 1 || st.Total != 3 {
		t.Errorf("Stats = %+v, want 1 queued, 1 applying, 1 applied", st)
	}
	if _, created, err := s.Submit(context.Background(), Patch{ID: "q", Role: "ui_patch", Target: "src/q"}, []byte("q")); err != nil || created {
		t.Errorf("Submit(q) again = created %v, %v; want the stored patch", created, err)
	}
	// The migrated index.db is written on as format 3.
	mustUpdate(t, s, "q", setState(StateApplying))
	mustUpdate(t, s, "q", setState(StateApplied))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if p, ok := s.Get("q"); !ok || p.State != StateApplied {
		t.Errorf("after a reopen, Get(q) = %v %q, want applied", ok, p.State)
	}
	if st := s.Stats(); st.Queued != 0 || st.Applied != 2 {
		t.Errorf("after a reopen, Stats = %+v, want 0 queued, 2 applied", st)
	}
}

// TestIndexV2MigrationFails: a format-2 index.db that cannot be migrated
// (it lists a patch as queued and has no entry for it) is not trusted: it
// is moved aside and the index rebuilt from the segments, with every patch
// in its state.
func TestIndexV2MigrationFails(t *testing.T) {
	dir := t.TempDir()
	path := v2History(t, dir, func(s *Store) {
		mustSubmit(t, s, "p", "p")
		mustUpdate(t, s, "p", setState(StateApplying))
		mustUpdate(t, s, "p", setState(StateApplied))
		mustSubmit(t, s, "q", "q")
	})
	editIndex(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bIDs).Delete([]byte("q")) })

	s := openRebuilt(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour}, "moving it from format 2 to 3 failed")
	for id, st := range map[string]State{"p": StateApplied, "q": StateQueued} {
		if p, ok := s.Get(id); !ok || p.State != st {
			t.Errorf("Get(%s) = %v %q, want %q", id, ok, p.State, st)
		}
	}
	if l := liveIndex(t, s); len(l) != 1 || l[0].id != "q" {
		t.Errorf("live bucket after the rebuild = %v, want q", l)
	}
}

// TestCheckpointWriteFails: a checkpoint whose write fails leaves index.db
// as it was, and the next one writes what it missed: a patch the failed
// one would have moved from the live bucket to applied is not left in the
// live bucket (a reopen would queue it again), and one it would have added
// is there.
func TestCheckpointWriteFails(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	opts := Options{NoSync: true, CheckpointInterval: time.Hour, ckFail: func() error {
		if fail.Load() {
			return errors.New("no space left on device (injected)")
		}
		return nil
	}}
	s := openTest(t, dir, opts)
	mustSubmit(t, s, "q", "q")
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, "q", setState(StateApplying))
	mustUpdate(t, s, "q", setState(StateApplied))
	mustSubmit(t, s, "n", "n")
	fail.Store(true)
	if err := s.checkpoint(); err == nil {
		t.Fatal("checkpoint with its write failing = nil, want the error")
	}
	fail.Store(false)
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, l := range liveIndex(t, s) {
		live = append(live, l.id)
	}
	if want := []string{"n"}; !slices.Equal(live, want) {
		t.Errorf("live bucket after a failed checkpoint and a good one has %q, want %q", live, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if st := s.Stats(); st.Queued != 1 || st.Applied != 1 {
		t.Errorf("after a reopen, Stats = %+v, want 1 queued (n), 1 applied (q)", st)
	}
	if p, ok := s.Get("q"); !ok || p.State != StateApplied {
		t.Errorf("after a reopen, Get(q) = %v %q, want applied", ok, p.State)
	}
}
