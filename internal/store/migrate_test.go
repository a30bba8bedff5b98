package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
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
		err := live.ForEach(func(_, v []byte) error {
			recs, err := decodeChunk(v)
			for _, r := range recs {
				k := seqKey(r.seq)
				e, derr := r.entry()
				err = errors.Join(err, derr,
					tx.Bucket(bIDs).Put([]byte(r.id), e.encode()),
					tx.Bucket(bSeq).Put(k, []byte(r.id)),
					tx.Bucket(bState(e.state)).Put(k, []byte(r.id)),
				)
			}
			return err
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

// liveEntry is an entry of index.db's live chunks, decoded; key is its
// Seq.
type liveEntry struct {
	key uint64
	id  string
	e   dbEntry
}

// liveIndex is what index.db's live chunks hold, in their order.
func liveIndex(t *testing.T, s *Store) []liveEntry {
	t.Helper()
	var out []liveEntry
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bLive).ForEach(func(_, v []byte) error {
			recs, err := decodeChunk(v)
			for _, r := range recs {
				e, derr := r.entry()
				out = append(out, liveEntry{r.seq, r.id, e})
				err = errors.Join(err, derr)
			}
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIndexV2Migrated: an index.db of format 2 (live patches in ids) is
// moved to this format at Open, not rebuilt: the queued and applying patches
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

	s := openRebuilt(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour}, fmt.Sprintf("moving it from format 2 to %d failed", indexVersion))
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

// toV3 rewrites index.db in format 3: the live patches a key each, under
// their Seq, in the bucket "live".
func toV3(t *testing.T, path string) {
	t.Helper()
	editIndex(t, path, func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bLiveV3)
		if err != nil {
			return err
		}
		err = tx.Bucket(bLive).ForEach(func(_, v []byte) error {
			recs, err := decodeChunk(v)
			for _, r := range recs {
				err = errors.Join(err, old.Put(seqKey(r.seq), bytes.Clone(r.raw)))
			}
			return err
		})
		return errors.Join(err, tx.DeleteBucket(bLive), tx.Bucket(bMeta).Put([]byte("v"), []byte{3}))
	})
}

// v3History builds a store with patches queued, applying and applied,
// over three chunks of the live bucket (the live ones every third), in
// format 3; it returns the path of index.db and the live patches.
func v3History(t *testing.T, dir string) (string, []liveEntry) {
	t.Helper()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	for i := range 2*liveChunk + 10 {
		id := fmt.Sprintf("m%04d", i)
		mustSubmit(t, s, id, id)
		switch i % 3 {
		case 1:
			mustUpdate(t, s, id, setState(StateApplying))
		case 2:
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, setState(StateApplied))
		}
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := liveIndex(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, indexName)
	toV3(t, path)
	return path, want
}

// TestIndexV3Migrated: an index.db of format 3 (a key per live patch) is
// moved to chunks at Open, not rebuilt: the same live patches, in the
// queue as before, and the old bucket gone.
func TestIndexV3Migrated(t *testing.T) {
	dir := t.TempDir()
	path, want := v3History(t, dir)
	if len(want) < 2*liveChunk*2/3 {
		t.Fatalf("the history has %d live patches, want over two chunks' worth", len(want))
	}
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if _, err := os.Stat(path + ".bad"); err == nil {
		t.Fatal("index.db of format 3 was moved aside and rebuilt, want it migrated")
	}
	if got := liveIndex(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("live chunks after the migration: %d entries, want the %d of format 3's bucket", len(got), len(want))
	}
	var version []byte
	var oldBucket bool
	s.view(func(tx *bolt.Tx) error {
		version = bytes.Clone(tx.Bucket(bMeta).Get([]byte("v")))
		oldBucket = tx.Bucket(bLiveV3) != nil
		return nil
	})
	if !bytes.Equal(version, []byte{indexVersion}) || oldBucket {
		t.Errorf("after Open: format %v, format 3's live bucket there: %v; want [%d], gone", version, oldBucket, indexVersion)
	}
	if st := s.Stats(); st.Queued+st.Applying != len(want) {
		t.Errorf("after the migration, Stats = %+v, want %d live", st, len(want))
	}
	if p, ok := s.Get("m0001"); !ok || p.State != StateApplying {
		t.Errorf("Get(m0001) = %v %q, want applying", ok, p.State)
	}
}

// TestIndexV3MigrationFails: a format-3 index.db with a live entry under
// another Seq is not migrated but moved aside, and the index rebuilt.
func TestIndexV3MigrationFails(t *testing.T) {
	dir := t.TempDir()
	path, want := v3History(t, dir)
	editIndex(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bLiveV3)
		k, v := b.Cursor().First()
		return b.Put(seqKey(binary.BigEndian.Uint64(k)+1000), bytes.Clone(v))
	})
	s := openRebuilt(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour}, fmt.Sprintf("moving it from format 3 to %d failed", indexVersion))
	if st := s.Stats(); st.Queued+st.Applying != len(want) {
		t.Errorf("after the rebuild, Stats = %+v, want %d live", st, len(want))
	}
}

// TestLiveChunks: the live patches go into chunks by their Seq; a patch
// that changes moves within or leaves its chunk, a chunk left empty is
// deleted, and a reopen queues exactly the patches still live.
func TestLiveChunks(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	const n = 3*liveChunk + 5
	for i := range n {
		mustSubmit(t, s, fmt.Sprintf("c%04d", i), "b")
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	chunkKeys := func() (keys []uint64) {
		s.view(func(tx *bolt.Tx) error {
			return tx.Bucket(bLive).ForEach(func(k, _ []byte) error {
				keys = append(keys, binary.BigEndian.Uint64(k))
				return nil
			})
		})
		return keys
	}
	// Seqs 1 to n: chunks 0, 256, 512, 768.
	if got, want := chunkKeys(), []uint64{0, liveChunk, 2 * liveChunk, 3 * liveChunk}; !slices.Equal(got, want) {
		t.Fatalf("chunk keys = %v, want %v", got, want)
	}
	// The first chunk's patches all finish (it goes), the second's every
	// other one starts applying (changed in place), the third's half fail.
	live := map[string]State{}
	for i := range n {
		id := fmt.Sprintf("c%04d", i)
		seq := uint64(i + 1)
		switch chunkOf(seq) {
		case 0:
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, setState(StateApplied))
		case liveChunk:
			if i%2 == 0 {
				mustUpdate(t, s, id, setState(StateApplying))
				live[id] = StateApplying
			} else {
				live[id] = StateQueued
			}
		case 2 * liveChunk:
			if i%2 == 0 {
				mustUpdate(t, s, id, setState(StateFailed))
			} else {
				live[id] = StateQueued
			}
		default:
			live[id] = StateQueued
		}
	}
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got, want := chunkKeys(), []uint64{liveChunk, 2 * liveChunk, 3 * liveChunk}; !slices.Equal(got, want) {
		t.Errorf("chunk keys after the first chunk's patches finished = %v, want %v", got, want)
	}
	check := func(when string, got []liveEntry) {
		t.Helper()
		seen := map[string]State{}
		var prev uint64
		for _, l := range got {
			seen[l.id] = l.e.state
			if l.key <= prev {
				t.Errorf("%s: live entries out of Seq order at %s (%d after %d)", when, l.id, l.key, prev)
			}
			prev = l.key
		}
		if !maps.Equal(seen, live) {
			t.Errorf("%s: the live chunks hold %d patches, want the %d live ones in their states", when, len(seen), len(live))
		}
	}
	check("after the changes", liveIndex(t, s))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	check("after a reopen", liveIndex(t, s))
	if st := s.Stats(); st.Queued+st.Applying != len(live) || st.Applied != liveChunk-1 {
		t.Errorf("after a reopen, Stats = %+v, want %d live, %d applied", st, len(live), liveChunk-1)
	}
}

// segRefCounts is index.db's bSegRefs: segment → patches referring to it.
func segRefCounts(t *testing.T, s *Store) map[uint32]uint64 {
	t.Helper()
	out := map[uint32]uint64{}
	if err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bSegRefs).ForEach(func(k, v []byte) error {
			out[binary.BigEndian.Uint32(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIndexV4StaleLiveDropped: an index.db of format 4 with the stale
// live entries the builds writing it could leave (a failed patch's
// earlier attempt, still queued in the live chunks after its new attempt
// was checkpointed, live or finished) is moved to format 5 at Open, not
// rebuilt: the stale entries go, with their counts of segments, and
// neither comes back into the queue.
func TestIndexV4StaleLiveDropped(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, CheckpointInterval: time.Hour}
	s := openTest(t, dir, opts)
	mustSubmit(t, s, "keep", "keep")
	mustSubmit(t, s, "a", "a one")
	mustSubmit(t, s, "b", "b one")
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	var stale []liveEntry // a's and b's first attempts, as queued
	for _, e := range liveIndex(t, s) {
		if e.id != "keep" {
			stale = append(stale, e)
		}
	}
	for _, id := range []string{"a", "b"} {
		failPatch(t, s, id, "failed", "match_not_found")
		if _, _, err := resubmit(t, s, id, id+" two"); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(t, s, "b", setState(StateApplying))
	mustUpdate(t, s, "b", setState(StateApplied))
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want, wantRefs := liveIndex(t, s), segRefCounts(t, s)
	wantA, _ := s.Get("a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(stale) != 2 || len(want) != 2 {
		t.Fatalf("%d stale entries, %d live ones; want 2 and 2 (keep, a)", len(stale), len(want))
	}
	path := filepath.Join(dir, indexName)
	editIndex(t, path, func(tx *bolt.Tx) error {
		live, refs := tx.Bucket(bLive), tx.Bucket(bSegRefs)
		for _, st := range stale {
			key := seqKey(chunkOf(st.key))
			recs, err := decodeChunk(bytes.Clone(live.Get(key)))
			if err != nil {
				return err
			}
			recs = append(recs, liveRec{seq: st.key, id: st.id, raw: appendLive(st.id, &st.e)})
			slices.SortFunc(recs, func(a, b liveRec) int { return cmpSeq(a.seq, b.seq) })
			if err := live.Put(key, encodeChunk(recs)); err != nil {
				return err
			}
			// As written, the stale entry counted for its segments.
			for _, n := range st.e.segs() {
				k, v := countAfter(refs, n, 1)
				if err := refs.Put(k, v); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bMeta).Put([]byte("v"), []byte{4})
	})

	r := openTest(t, dir, opts)
	if _, err := os.Stat(path + ".bad"); err == nil {
		t.Fatal("index.db of format 4 was moved aside and rebuilt, want it migrated")
	}
	if got := liveIndex(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("live chunks after the migration = %+v\nwant %+v", got, want)
	}
	if got := segRefCounts(t, r); !reflect.DeepEqual(got, wantRefs) {
		t.Errorf("segment counts after the migration = %v, want %v", got, wantRefs)
	}
	if p, ok := r.Get("a"); !ok || p.Seq != wantA.Seq || p.State != StateQueued {
		t.Errorf("Get(a) = %v Seq %d %s, want its new attempt queued, Seq %d", ok, p.Seq, p.State, wantA.Seq)
	}
	var got []string
	for range 2 {
		n, err := r.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", n.ID, n.Seq))
		mustUpdate(t, r, n.ID, setState(StateApplying))
		mustUpdate(t, r, n.ID, setState(StateApplied))
	}
	if w := []string{"keep/1", fmt.Sprintf("a/%d", wantA.Seq)}; !reflect.DeepEqual(got, w) {
		t.Errorf("the queue after the migration = %v, want %v", got, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if n, err := r.Next(ctx); err == nil {
		t.Errorf("Next = %s Seq %d, want nothing more queued", n.ID, n.Seq)
	}
}

// TestIndexV4MigrationFails: a format-4 index.db whose live chunk does not
// decode is not migrated but moved aside, and the index rebuilt from the
// segments with every live patch.
func TestIndexV4MigrationFails(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	for i := range 10 {
		mustSubmit(t, s, fmt.Sprintf("q%d", i), "b")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editIndex(t, filepath.Join(dir, indexName), func(tx *bolt.Tx) error {
		return errors.Join(
			tx.Bucket(bLive).Put(seqKey(0), []byte{0xff, 0xff, 0xff}),
			tx.Bucket(bMeta).Put([]byte("v"), []byte{4}),
		)
	})
	r := openRebuilt(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour}, "moving it from format 4 to 5 failed")
	if st := r.Stats(); st.Queued != 10 {
		t.Errorf("after the rebuild, Stats = %+v, want 10 queued", st)
	}
}
