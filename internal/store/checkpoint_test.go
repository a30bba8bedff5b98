package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const ckCrashEnv = "PATCHD_TEST_CHECKPOINT_CRASH_DIR"

// TestCheckpointCrash kills, three times over, a process that submits and
// moves patches on from 16 goroutines while checkpoints are written every
// few milliseconds and segments roll every 64 KiB, and checks after each
// kill that every acknowledged patch is there, in at least the state
// acknowledged, with its body.
func TestCheckpointCrash(t *testing.T) {
	if dir := os.Getenv(ckCrashEnv); dir != "" {
		ckCrashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	acked := make(map[string]string) // id → the furthest state acknowledged
	rank := map[string]int{"queued": 1, "applying": 2, "applied": 3}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), ckCrashEnv+"="+dir, "PATCHD_TEST_ROUND="+fmt.Sprint(round))
		cmd.Stderr = tlogWriter{t}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		n := 0
		record := func(line string) {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "ACK" {
				n++
				if rank[f[2]] > rank[acked[f[1]]] {
					acked[f[1]] = f[2]
				}
			}
		}
		timeout := time.After(2 * time.Minute)
		// Enough for many checkpoints and segments; the kill then lands
		// anywhere in the child's work, a checkpoint included.
		for n < 3000 {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited after %d acknowledgements: %v", round, n, cmd.Wait())
				}
				record(line)
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("round %d: child acknowledged only %d in time", round, n)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for line := range lines {
			record(line)
		}
		cmd.Wait()

		s := openTest(t, dir, Options{SegmentBytes: 64 << 10})
		t.Logf("round %d: %d acknowledged in all, store holds %d", round, len(acked), s.Stats().Total)
		for id, state := range acked {
			p, ok := s.Get(id)
			if !ok {
				t.Errorf("round %d: acknowledged patch %s missing after kill -9", round, id)
				continue
			}
			if rank[string(p.State)] < rank[state] {
				t.Errorf("round %d: patch %s is %s, acknowledged %s", round, id, p.State, state)
			}
			if body, err := s.Body(id); err != nil || string(body) != crashBody(id) {
				t.Errorf("round %d: Body(%s) = %q, %v", round, id, body, err)
			}
		}
		if st := s.Stats(); st.Total < len(acked) {
			t.Errorf("round %d: Stats().Total = %d, want at least %d", round, st.Total, len(acked))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// ckCrashChild submits patches and moves most of them to applied, until
// killed, printing each acknowledgement as soon as it has it.
func ckCrashChild(dir string) {
	s, err := Open(dir, Options{CheckpointInterval: 3 * time.Millisecond, SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	time.AfterFunc(time.Minute, func() { os.Exit(3) })
	var mu sync.Mutex
	ack := func(id, state string) {
		mu.Lock()
		os.Stdout.WriteString("ACK " + id + " " + state + "\n")
		mu.Unlock()
	}
	round := os.Getenv("PATCHD_TEST_ROUND")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				if _, _, err := s.Submit(ctx, Patch{ID: id}, []byte(crashBody(id))); err != nil {
					fmt.Fprintln(os.Stderr, "submit:", err)
					os.Exit(2)
				}
				ack(id, "queued")
				if i%4 == 0 {
					continue
				}
				for _, st := range []State{StateApplying, StateApplied} {
					if _, err := s.Update(ctx, id, func(p *Patch) error { p.State = st; return nil }); err != nil {
						fmt.Fprintln(os.Stderr, "update:", err)
						os.Exit(2)
					}
					ack(id, string(st))
				}
			}
		})
	}
	wg.Wait()
}

// ckHistory builds a store with patches in every state over several
// segments, closes it (a checkpoint) and returns what List and Get give.
func ckHistory(t *testing.T, dir string, from, n int) []Patch {
	t.Helper()
	s := openTest(t, dir, Options{NoSync: true, SegmentBytes: 8 << 10})
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		id := fmt.Sprint("k", i)
		mustSubmit(t, s, id, crashBody(id))
		switch i % 5 {
		case 0:
			continue
		case 1:
			mustUpdate(t, s, id, setState(StateFailed))
			if _, created, err := s.Submit(ctx, Patch{ID: id}, []byte(ckBody(id))); err != nil || !created {
				t.Fatal(created, err) // a new attempt: a new Seq
			}
			continue
		}
		mustUpdate(t, s, id, setState(StateApplying))
		if _, err := s.UpdateBlobs(ctx, id, []Blob{{"b", []byte("blob " + id)}}, func(p *Patch) error { return nil }); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, id, func(p *Patch) {
			p.State, p.Diff = StateApplied, "diff of "+id
			p.Files = []FileChange{{Path: fmt.Sprint("f", i%7), Existed: true}}
		})
		if i%5 == 4 {
			mustUpdate(t, s, id, setState(StateReverted))
		}
	}
	want := listAll(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// listAll lists every patch, page by page.
func listAll(t *testing.T, s *Store) []Patch {
	t.Helper()
	return listPages(s, 7, "")
}

// listPages lists every patch in state ("" for all), limit a page.
func listPages(s *Store, limit int, state State) []Patch {
	var all []Patch
	for cursor := ""; ; {
		ps, next := s.List(cursor, limit, state)
		all = append(all, ps...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// checkHistory checks that s holds exactly want, with bodies and blobs.
func checkHistory(t *testing.T, when string, s *Store, want []Patch) {
	t.Helper()
	got := listAll(t, s)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: List differs:\ngot  %d patches %v\nwant %d patches %v", when, len(got), ids(got), len(want), ids(want))
	}
	for _, p := range want {
		if g, ok := s.Get(p.ID); !ok || !reflect.DeepEqual(g, p) {
			t.Errorf("%s: Get(%s) = %+v, %v\nwant %+v", when, p.ID, g, ok, p)
		}
		if body, err := s.Body(p.ID); err != nil || string(body) != ckBody(p.ID) {
			t.Errorf("%s: Body(%s) = %q, %v", when, p.ID, body, err)
		}
		if p.State == StateApplied || p.State == StateReverted {
			wantBlob(t, s, when, p.ID, "b", []byte("blob "+p.ID))
		}
	}
	for _, st := range States() {
		ps, _ := s.List("", 1000, st)
		n := 0
		for _, p := range want {
			if p.State == st {
				n++
			}
		}
		if len(ps) != n {
			t.Errorf("%s: List(%s) = %d patches, want %d", when, st, len(ps), n)
		}
	}
}

// TestTornCheckpoint: an index.db cut short at any point, or with garbage
// in its meta pages, is found out at Open, moved aside to index.db.bad and
// rebuilt from the segments; nothing is lost.
func TestTornCheckpoint(t *testing.T) {
	dir := t.TempDir()
	want := ckHistory(t, dir, 0, 60)
	path := filepath.Join(dir, "index.db")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := 4096
	// bbolt grows the file ahead of its pages (sparse), so cuts are
	// measured from where the pages end.
	end := pagesEnd(t, path)
	garbage := func(b []byte, pages ...int) []byte {
		b = bytes.Clone(b)
		for _, p := range pages {
			for i := p*page + 16; i < p*page+200; i++ {
				b[i] ^= 0x5a
			}
		}
		return b
	}
	cases := map[string][]byte{
		"empty":                      {},
		"cut at 100":                 good[:100],
		"cut after the meta pages":   good[:2*page],
		"cut in the middle":          good[:end/2/page*page+123],
		"cut one byte short":         good[:end-1],
		"garbage in both meta pages": garbage(good, 0, 1),
		"not a bbolt file":           bytes.Repeat([]byte("patchd "), 2000),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openRebuilt(t, dir, Options{}, "index checkpoint not usable")
			checkHistory(t, name, s, want)
			s.Close()
			// The rebuilt index is used as it is at the next Open.
			var logs bytes.Buffer
			s = openTest(t, dir, Options{Logger: logTo(t, &logs)})
			checkHistory(t, name+", reopened", s, want)
			if strings.Contains(logs.String(), "not usable") {
				t.Errorf("the rebuilt index.db was not used; log:\n%s", logs.String())
			}
			s.Close()
		})
	}
	// Garbage in one meta page only: bbolt takes the other, an older
	// transaction: a stale checkpoint, replayed forward.
	t.Run("garbage in one meta page", func(t *testing.T) {
		b, _ := os.ReadFile(path)
		for p := range 2 {
			if err := os.WriteFile(path, garbage(b, p), 0o600); err != nil {
				t.Fatal(err)
			}
			s := openTest(t, dir, Options{})
			checkHistory(t, fmt.Sprint("meta page ", p), s, want)
			s.Close()
		}
	})
}

// TestDamagedLiveEntry: an index.db whose live bucket has an entry that
// is not what a live patch's entry under its key is (a value that does not
// decode, one under another patch's Seq, one of a finished patch) is not
// trusted: Open moves it aside and rebuilds from the segments, and the
// queue is as it was. It used to fail Open, leaving the daemon down.
func TestDamagedLiveEntry(t *testing.T) {
	dir := t.TempDir()
	want := ckHistory(t, dir, 0, 30)
	path := filepath.Join(dir, indexName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	queued := func(ps []Patch) (ids []string) {
		for _, p := range ps {
			if p.State == StateQueued {
				ids = append(ids, p.ID)
			}
		}
		return ids
	}
	if len(queued(want)) < 2 {
		t.Fatalf("the history has %d queued patches, want 2 or more", len(queued(want)))
	}
	damage := map[string]func(b *bolt.Bucket) error{
		"a value that does not decode": func(b *bolt.Bucket) error {
			k, _ := b.Cursor().First()
			return b.Put(k, []byte{0xff, 0xff, 0xff})
		},
		"entries under another chunk's key": func(b *bolt.Bucket) error {
			k, v := b.Cursor().First()
			v = bytes.Clone(v)
			if err := b.Delete(k); err != nil {
				return err
			}
			return b.Put(seqKey(binary.BigEndian.Uint64(k)+liveChunk), v)
		},
		"entries out of Seq order": func(b *bolt.Bucket) error {
			k, v := b.Cursor().First()
			recs, err := decodeChunk(v)
			if err != nil || len(recs) < 2 {
				return fmt.Errorf("the first chunk has %d entries (%v), want 2 or more", len(recs), err)
			}
			recs[0], recs[1] = recs[1], recs[0]
			return b.Put(k, encodeChunk(recs))
		},
		"a finished patch's entry": func(b *bolt.Bucket) error {
			k, v := b.Cursor().First()
			recs, err := decodeChunk(v)
			if err != nil {
				return err
			}
			e, err := recs[0].entry()
			if err != nil {
				return err
			}
			e.state = StateApplied
			recs[0].raw = appendLive(recs[0].id, &e)
			return b.Put(k, encodeChunk(recs))
		},
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(path + ".bad")
			editIndex(t, path, func(tx *bolt.Tx) error { return fn(tx.Bucket(bLive)) })
			s := openRebuilt(t, dir, Options{}, "live patch entry under key")
			checkHistory(t, name, s, want)
			var got []string
			for _, e := range s.idx.queued { // as next takes them
				if e.p.State == StateQueued && s.idx.patches[e.p.ID] == e {
					got = append(got, e.p.ID)
				}
			}
			slices.Sort(got)
			w := queued(want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("queue after the rebuild = %v, want %v", got, w)
			}
			s.Close()
		})
	}
}

// openRebuilt opens the store in dir, whose index.db must not be trusted:
// the log warns with why (it contains why), and the untrusted file is kept
// as index.db.bad. The index is then the one rebuilt from the segments.
func openRebuilt(t *testing.T, dir string, opts Options, why string) *Store {
	t.Helper()
	var logs bytes.Buffer
	opts.Logger = logTo(t, &logs)
	s := openTest(t, dir, opts)
	if !strings.Contains(logs.String(), "index checkpoint not usable") || !strings.Contains(logs.String(), why) {
		t.Errorf("no warning that index.db was not used because of %q; log:\n%s", why, logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, indexName+".bad")); err != nil {
		t.Errorf("index.db.bad not kept: %v", err)
	}
	return s
}

// pagesEnd is where the pages of the bbolt file at path end, by its meta.
func pagesEnd(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

// logTo is a logger writing to buf (and the test log).
func logTo(t *testing.T, buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(buf, tlogWriter{t}), nil))
}

// ckBody is the body ckHistory gives a patch: a new attempt's for those
// it failed and sent again.
func ckBody(id string) string {
	var n int
	if _, err := fmt.Sscanf(id, "k%d", &n); err == nil && n%5 == 1 {
		return crashBody(id) + "2"
	}
	return crashBody(id)
}

// TestStaleCheckpoint: an index.db from an earlier moment (a copy, a
// restored backup) is replayed forward from its watermark: every change
// since, in every state, the expiry of patches and the event numbers.
func TestStaleCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ckHistory(t, dir, 0, 40)
	stale, err := os.ReadFile(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	ckHistory(t, dir, 40, 40)
	s := openTest(t, dir, Options{NoSync: true})
	// Changes to patches the stale checkpoint has.
	mustUpdate(t, s, "k2", setState(StateReverted))
	mustSubmit(t, s, "k0-dropped", "x")
	if _, err := s.Drop(context.Background(), "k0-dropped"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(context.Background(), PrunePolicy{MaxCount: 30}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) == 0 {
		t.Fatal("Prune expired nothing")
	}
	want := listAll(t, s)
	lastEvent := s.LastEventID()
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "index.db"), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s = openTest(t, dir, Options{Logger: logTo(t, &logs)})
	if strings.Contains(logs.String(), "not usable") {
		t.Errorf("a stale index.db was not used; log:\n%s", logs.String())
	}
	if got := listAll(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a stale checkpoint List = %v\nwant %v", ids(got), ids(want))
	}
	for _, x := range res.Expired {
		if _, ok := s.Expired(x.ID); !ok {
			t.Errorf("%s expired, not after a stale checkpoint", x.ID)
		}
		if _, ok := s.Get(x.ID); ok {
			t.Errorf("expired %s back after a stale checkpoint", x.ID)
		}
	}
	if got := s.LastEventID(); got != lastEvent {
		t.Errorf("LastEventID after a stale checkpoint = %d, want %d", got, lastEvent)
	}
	if p := mustSubmit(t, s, "next", "x"); p.Seq <= want[0].Seq {
		t.Errorf("Seq after a stale checkpoint = %d, want after %d", p.Seq, want[0].Seq)
	}
}

// TestMissingSegment: a segment the index needs and that is not there
// fails Open with an error naming it; no patch is silently lost.
func TestMissingSegment(t *testing.T) {
	for _, which := range []string{"first", "middle", "last"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			ckHistory(t, dir, 0, 40)
			segs, _ := listSegments(filepath.Join(dir, "seg"))
			if len(segs) < 3 {
				t.Fatalf("segments = %v, want at least 3", segs)
			}
			gone := map[string]uint32{"first": segs[0], "middle": segs[len(segs)/2], "last": segs[len(segs)-1]}[which]
			if err := os.Remove(filepath.Join(dir, "seg", segName(gone))); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, Options{Logger: testLogger(t)})
			if err == nil || !strings.Contains(err.Error(), segName(gone)) || !strings.Contains(err.Error(), "missing") {
				t.Errorf("Open without %s = %v; want an error naming it missing", segName(gone), err)
			}
		})
	}
}

// TestEventNumbersDurable: event numbers go on after a restart even when
// the event log lost its last lines; before, they were taken from the
// log's last line and given again.
func TestEventNumbersDurable(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	s := openTest(t, dir, Options{EventsPath: events})
	for i := range 5 {
		mustSubmit(t, s, fmt.Sprint("e", i), "x")
		mustUpdate(t, s, fmt.Sprint("e", i), setState(StateApplying))
	}
	last := s.LastEventID()
	if last != 10 {
		t.Fatalf("LastEventID = %d, want 10", last)
	}
	s.Close()
	// A power failure took the log's last lines.
	b, _ := os.ReadFile(events)
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(events, []byte(strings.Join(lines[:4], "")), 0o600)
	s = openTest(t, dir, Options{EventsPath: events})
	if got := s.LastEventID(); got != last {
		t.Errorf("LastEventID after the log lost lines = %d, want %d", got, last)
	}
	mustSubmit(t, s, "after", "x")
	if got := s.LastEventID(); got != last+1 {
		t.Errorf("the next event is %d, want %d", got, last+1)
	}
	s.Close()
	// Without index.db (rebuilt from the journal), the same.
	os.Remove(filepath.Join(dir, "index.db"))
	s = openTest(t, dir, Options{EventsPath: events})
	if got := s.LastEventID(); got != last+1 {
		t.Errorf("LastEventID after a rebuild = %d, want %d", got, last+1)
	}
}

// TestIndexFileSize: a new store's index.db is a small file, not grown to
// bbolt's 16 MiB step ahead of its pages.
func TestIndexFileSize(t *testing.T) {
	dir := t.TempDir()
	ckHistory(t, dir, 0, 60)
	fi, err := os.Stat(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 2<<20 {
		t.Errorf("index.db of 60 patches is %d bytes, want at most 2 MiB", fi.Size())
	}
}

// TestCheckpointWhileChanging: patches that change while a checkpoint is
// being written (put since, in its set and moving on, failed and sent
// again, leaving the queue) are in index.db as they are once the next
// checkpoint is written, whether the held write succeeded or failed: each
// live patch once in the live chunks under its Seq, none of them in ids,
// every other patch in ids, and a reopen lists every patch as it was.
func TestCheckpointWhileChanging(t *testing.T) {
	for _, failWrite := range []bool{false, true} {
		t.Run(map[bool]string{false: "written", true: "failed"}[failWrite], func(t *testing.T) {
			dir := t.TempDir()
			var hold atomic.Bool
			begun, release := make(chan struct{}), make(chan struct{})
			opts := Options{NoSync: true, CheckpointInterval: time.Hour, ckFail: func() error {
				if !hold.Load() {
					return nil
				}
				begun <- struct{}{}
				<-release
				if failWrite {
					return errors.New("no space left on device")
				}
				return nil
			}}
			s := openTest(t, dir, opts)
			for i := range 6 {
				mustSubmit(t, s, fmt.Sprintf("q%d", i), "b")
			}
			mustSubmit(t, s, "old", "b")
			mustUpdate(t, s, "old", setState(StateApplying))
			mustUpdate(t, s, "old", setState(StateApplied))
			if err := s.checkpoint(); err != nil {
				t.Fatal(err)
			}
			// The held checkpoint's set.
			mustSubmit(t, s, "new1", "b")
			mustUpdate(t, s, "q0", setState(StateApplying))
			mustUpdate(t, s, "q1", setState(StateApplying))
			mustUpdate(t, s, "q1", setState(StateApplied))
			failPatch(t, s, "q2", "failed", "match_not_found")
			mustUpdate(t, s, "old", setState(StateReverted))
			mustUpdate(t, s, "q5", setState(StateApplying))
			mustUpdate(t, s, "q5", setState(StateApplied))

			hold.Store(true)
			done := make(chan error, 1)
			go func() { done <- s.checkpoint() }()
			<-begun
			// While it is written.
			mustSubmit(t, s, "new2", "b")
			if _, _, err := resubmit(t, s, "q2", "b two"); err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, s, "q0", setState(StateApplied))
			mustUpdate(t, s, "q1", setState(StateReverted))
			mustUpdate(t, s, "new1", setState(StateApplying))
			failPatch(t, s, "q3", "failed", "check_failed")
			if _, _, err := resubmit(t, s, "q3", "b two"); err != nil {
				t.Fatal(err)
			}
			release <- struct{}{}
			if err := <-done; (err != nil) != failWrite {
				t.Fatalf("held checkpoint = %v, want failed: %v", err, failWrite)
			}
			hold.Store(false)
			if err := s.checkpoint(); err != nil {
				t.Fatal(err)
			}

			want := listAll(t, s)
			wantLive := map[string]uint64{}
			for _, p := range want {
				if p.State == StateQueued || p.State == StateApplying {
					wantLive[p.ID] = p.Seq
				}
			}
			if len(wantLive) != 5 { // q2, q3, q4, new1, new2
				t.Fatalf("%d live patches, want 5: %v", len(wantLive), wantLive)
			}
			gotLive := map[string]uint64{}
			for _, e := range liveIndex(t, s) {
				if _, dup := gotLive[e.id]; dup {
					t.Errorf("live chunks hold %s twice", e.id)
				}
				gotLive[e.id] = e.key
			}
			if !reflect.DeepEqual(gotLive, wantLive) {
				t.Errorf("live chunks = %v, want %v", gotLive, wantLive)
			}
			s.view(func(tx *bolt.Tx) error {
				for _, p := range want {
					_, live := wantLive[p.ID]
					if inIDs := tx.Bucket(bIDs).Get([]byte(p.ID)) != nil; inIDs == live {
						t.Errorf("%s (%s): in ids %v", p.ID, p.State, inIDs)
					}
				}
				return nil
			})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := openTest(t, dir, Options{NoSync: true, CheckpointInterval: time.Hour})
			if got := listAll(t, r); !reflect.DeepEqual(got, want) {
				t.Errorf("after a reopen:\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestCheckpointRandom runs random sequences of what patches go through
// (put, taken, applied, failed, dropped, sent again, reverted) between
// checkpoints that succeed or fail, reopens after a clean Close or after
// one whose last checkpoint failed (replayed), and after each checkpoint
// written checks index.db against the store's own listing: each live
// patch once in the live chunks under its Seq, nothing else there, every
// other patch in ids under its Seq and no live one; after each reopen,
// the listing is what it was. The bug of 25c365b (an earlier attempt left
// in the live chunks) fails it within the first seeds.
func TestCheckpointRandom(t *testing.T) {
	for seed := range int64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			dir := t.TempDir()
			var failNext atomic.Bool
			opts := Options{NoSync: true, CheckpointInterval: time.Hour, SegmentBytes: 16 << 10, ckFail: func() error {
				if failNext.Load() {
					return errors.New("no space left on device")
				}
				return nil
			}}
			open := func() *Store {
				s, err := Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			defer func() { s.Close() }()
			ctx := context.Background()
			inState := func(st State) []string {
				var ids []string
				for _, p := range listAll(t, s) {
					if p.State == st {
						ids = append(ids, p.ID)
					}
				}
				return ids
			}
			pick := func(st State) (string, bool) {
				ids := inState(st)
				if len(ids) == 0 {
					return "", false
				}
				return ids[rng.IntN(len(ids))], true
			}
			check := func(when string) {
				t.Helper()
				want := listAll(t, s)
				live := map[string]uint64{}
				for _, e := range liveIndex(t, s) {
					if _, dup := live[e.id]; dup {
						t.Fatalf("%s: live chunks hold %s twice", when, e.id)
					}
					live[e.id] = e.key
				}
				s.view(func(tx *bolt.Tx) error {
					for _, p := range want {
						seq, isLive := live[p.ID]
						delete(live, p.ID)
						raw := tx.Bucket(bIDs).Get([]byte(p.ID))
						switch {
						case p.State == StateQueued || p.State == StateApplying:
							if !isLive || seq != p.Seq || raw != nil {
								t.Errorf("%s: %s (%s, Seq %d): live chunks %v (Seq %d), in ids %v", when, p.ID, p.State, p.Seq, isLive, seq, raw != nil)
							}
						case isLive || raw == nil:
							t.Errorf("%s: %s (%s, Seq %d): live chunks %v (Seq %d), in ids %v", when, p.ID, p.State, p.Seq, isLive, seq, raw != nil)
						default:
							if e, err := decodeEntry(raw); err != nil || e.seq != p.Seq || e.state != p.State {
								t.Errorf("%s: %s in ids: Seq %d %s, %v; want Seq %d %s", when, p.ID, e.seq, e.state, err, p.Seq, p.State)
							}
						}
					}
					return nil
				})
				if len(live) > 0 {
					t.Errorf("%s: live chunks hold patches the store does not list as live: %v", when, live)
				}
			}
			n := 0
			for step := range 400 {
				when := fmt.Sprintf("step %d", step)
				switch r := rng.IntN(100); {
				case r < 30:
					mustSubmit(t, s, fmt.Sprintf("r%d", n), "b")
					n++
				case r < 42:
					if id, ok := pick(StateQueued); ok {
						mustUpdate(t, s, id, setState(StateApplying))
					}
				case r < 54:
					if id, ok := pick(StateApplying); ok {
						mustUpdate(t, s, id, setState(StateApplied))
					}
				case r < 62:
					if id, ok := pick(StateApplying); ok {
						mustUpdate(t, s, id, func(p *Patch) { p.State, p.Error, p.Code = StateFailed, "failed", "match_not_found" })
					}
				case r < 66:
					if id, ok := pick(StateQueued); ok {
						if _, err := s.Drop(ctx, id); err != nil {
							t.Fatal(err)
						}
					}
				case r < 76:
					if id, ok := pick(StateFailed); ok {
						if _, _, err := resubmit(t, s, id, fmt.Sprintf("b%d", step)); err != nil {
							t.Fatal(err)
						}
					}
				case r < 79:
					if id, ok := pick(StateApplied); ok {
						mustUpdate(t, s, id, setState(StateReverted))
					}
				case r < 90:
					// One in four fails its write (one with nothing to
					// write does not try).
					failNext.Store(rng.IntN(4) == 0)
					err := s.checkpoint()
					if err != nil && !failNext.Load() {
						t.Fatalf("%s: checkpoint: %v", when, err)
					}
					failNext.Store(false)
					if err == nil {
						check(when + ", after a checkpoint")
					}
				case r < 95:
					want := listAll(t, s)
					// One Close in two has its last checkpoint fail: the
					// next Open replays what it would have written.
					failNext.Store(rng.IntN(2) == 0)
					s.Close()
					failNext.Store(false)
					s = open()
					if got := listAll(t, s); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: after a reopen, the store lists %v, want %v", when, ids(got), ids(want))
					}
				}
			}
			if err := s.checkpoint(); err != nil {
				t.Fatal(err)
			}
			check("at the end")
		})
	}
}
