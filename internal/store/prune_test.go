package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// pruneHistory builds a history in s where the patches received at old
// are two hours old. It returns the ids Prune with MaxAge 1h must expire,
// oldest first; every other patch must stay:
//
//	H, G, F  change y: H applied, G applied, F reverted (newest):
//	         F is y's newest, G the newest applied one (a revert of y
//	         goes back to it); H expires
//	A, B     change x, both applied: B is x's newest; A expires
//	C, D     queued, applying: live, kept however old
//	E        failed, changed no file: expires
//	I        applied, recent: kept
func pruneHistory(t *testing.T, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	old := time.Now().Add(-2 * time.Hour)
	add := func(id string, received time.Time, state State, files ...string) {
		t.Helper()
		if _, _, err := s.Submit(ctx, Patch{ID: id, ReceivedAt: received}, []byte("body of "+id)); err != nil {
			t.Fatalf("Submit(%s) = %v", id, err)
		}
		if state == StateQueued {
			return
		}
		if state == StateFailed {
			mustUpdate(t, s, id, setState(StateFailed))
			return
		}
		mustUpdate(t, s, id, setState(StateApplying))
		if state == StateApplying {
			return
		}
		mustUpdate(t, s, id, func(p *Patch) {
			p.State = StateApplied
			for _, f := range files {
				p.Files = append(p.Files, FileChange{Path: f, Existed: true, NewHash: "h-" + id})
			}
		})
		if state == StateReverted {
			mustUpdate(t, s, id, setState(StateReverted))
		}
	}
	add("H", old, StateApplied, "y")
	add("G", old, StateApplied, "y")
	add("F", old, StateReverted, "y")
	add("A", old, StateApplied, "x")
	add("B", old, StateApplied, "x")
	add("C", old, StateQueued)
	add("D", old, StateApplying)
	add("E", old, StateFailed)
	add("I", time.Now(), StateApplied, "z")
	for _, id := range []string{"H", "A", "B"} {
		if err := s.PutBlob(id, "backup", []byte("backup of "+id)); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"H", "A", "E"}
}

func expiredIDs(ps []ExpiredPatch) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// TestPruneKeepsLiveAndLatest: retention expires old patches but never a
// queued or applying one, nor one a revert of a file needs; a dry run
// changes nothing; expired patches are gone with their blobs, are told
// expired, and stay so after a restart.
func TestPruneKeepsLiveAndLatest(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	s := openTest(t, dir, Options{NoSync: true, EventsPath: events})
	want := pruneHistory(t, s)
	ctx := context.Background()
	pol := PrunePolicy{MaxAge: time.Hour}

	dry, err := s.Prune(ctx, pol, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := expiredIDs(dry.Expired); !slices.Equal(got, want) {
		t.Errorf("dry run expired %v, want %v", got, want)
	}
	if dry.Kept != 6 || dry.Protected != 5 || dry.BlobBytes == 0 || dry.JournalBytes == 0 {
		t.Errorf("dry run = kept %d protected %d blob bytes %d journal bytes %d, want 6, 5 (B C D F G), > 0, > 0",
			dry.Kept, dry.Protected, dry.BlobBytes, dry.JournalBytes)
	}
	for _, id := range want {
		if _, ok := s.Get(id); !ok {
			t.Errorf("dry run: Get(%s) gone", id)
		}
		if _, ok := s.Expired(id); ok {
			t.Errorf("dry run: Expired(%s) = true", id)
		}
	}
	if _, err := s.Blob("H", "backup"); err != nil {
		t.Errorf("dry run: blob of H: %v", err)
	}

	res, err := s.Prune(ctx, pol, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := expiredIDs(res.Expired); !slices.Equal(got, want) {
		t.Errorf("Prune expired %v, want %v", got, want)
	}
	if res.Kept != 6 || res.BlobBytes != dry.BlobBytes {
		t.Errorf("Prune = kept %d blob bytes %d, want 6, %d", res.Kept, res.BlobBytes, dry.BlobBytes)
	}
	check := func(s *Store, when string) {
		t.Helper()
		for _, id := range want {
			if _, ok := s.Get(id); ok {
				t.Errorf("%s: Get(%s) still finds it", when, id)
			}
			if at, ok := s.Expired(id); !ok || time.Since(at) > time.Minute {
				t.Errorf("%s: Expired(%s) = %v, %v; want just now, true", when, id, at, ok)
			}
			_, _, err := s.Submit(ctx, Patch{ID: id}, []byte("again"))
			var ee *ExpiredError
			if !errors.Is(err, ErrExpired) || !errors.As(err, &ee) || ee.Code() != CodeExpired || ee.ID != id {
				t.Errorf("%s: Submit(%s) again = %v, want an ExpiredError", when, id, err)
			}
		}
		for _, id := range []string{"B", "C", "D", "F", "G", "I"} {
			if _, ok := s.Get(id); !ok {
				t.Errorf("%s: Get(%s) = gone, want kept", when, id)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "blobs", "H")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: blobs of H: %v, want removed", when, err)
		}
		if _, err := s.Blob("B", "backup"); err != nil {
			t.Errorf("%s: blob of B (kept): %v", when, err)
		}
		ps, _ := s.List("", 100, "")
		if len(ps) != 6 {
			t.Errorf("%s: List has %d patches, want 6", when, len(ps))
		}
		if st := s.Stats(); st.Total != 6 || st.Applied != 3 || st.Failed != 0 {
			t.Errorf("%s: Stats = %+v, want 6 in all, 3 applied (B G I), 0 failed", when, st)
		}
	}
	check(s, "after Prune")
	s.Close()
	var expiredEvents []string
	for _, e := range readEvents(t, events) {
		if e.Event == "patch.expired" {
			expiredEvents = append(expiredEvents, e.ID)
		}
	}
	if !slices.Equal(expiredEvents, want) {
		t.Errorf("patch.expired events for %v, want %v", expiredEvents, want)
	}

	s = openTest(t, dir, Options{NoSync: true})
	check(s, "after a restart")
	p := mustSubmit(t, s, "J", "j")
	if p.Seq <= 9 {
		t.Errorf("a new patch after the restart has Seq %d, want above 9", p.Seq)
	}
	res, err = s.Prune(ctx, pol, false)
	if err != nil || len(res.Expired) != 0 {
		t.Errorf("Prune again = %v, %v; want nothing expired", expiredIDs(res.Expired), err)
	}
}

// TestPruneCount: MaxCount keeps the newest patches; the latest seq is
// never given again, even when the newest patches expired.
func TestPruneCount(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true})
	for i := range 10 {
		id := fmt.Sprint("P", i)
		mustSubmit(t, s, id, id)
		mustUpdate(t, s, id, setState(StateFailed))
	}
	res, err := s.Prune(context.Background(), PrunePolicy{MaxCount: 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := expiredIDs(res.Expired), []string{"P0", "P1", "P2", "P3", "P4", "P5", "P6"}; !slices.Equal(got, want) {
		t.Errorf("Prune(MaxCount 3) expired %v, want %v", got, want)
	}
	res, err = s.Prune(context.Background(), PrunePolicy{MaxAge: time.Nanosecond, Now: time.Now().Add(time.Hour)}, false)
	if err != nil || len(res.Expired) != 3 || res.Kept != 0 || !res.OldestKept.IsZero() {
		t.Fatalf("Prune(all) = %d expired, %d kept, oldest %v, %v; want 3, 0, zero", len(res.Expired), res.Kept, res.OldestKept, err)
	}
	s.Close()
	s = openTest(t, dir, Options{NoSync: true})
	if p := mustSubmit(t, s, "new", "new"); p.Seq != 11 {
		t.Errorf("Seq after every patch expired and a restart = %d, want 11", p.Seq)
	}
}

// TestPruneSurvivesReopen: the tombstones of expired patches, in a
// journal of many segments, are back after each reopen.
func TestPruneSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, SegmentBytes: 16 << 10})
	for i := range 50 {
		id := fmt.Sprint("P", i)
		mustSubmit(t, s, id, string(make([]byte, 4096)))
		mustUpdate(t, s, id, setState(StateFailed))
	}
	if _, err := s.Prune(context.Background(), PrunePolicy{MaxCount: 2}, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for round := range 2 {
		s = openTest(t, dir, Options{NoSync: true, SegmentBytes: 16 << 10})
		st := s.Stats()
		if st.Total != 2+round {
			t.Errorf("round %d: %d patches, want %d", round, st.Total, 2+round)
		}
		if _, ok := s.Expired("P0"); !ok {
			t.Errorf("round %d: P0 not expired after a reopen", round)
		}
		if _, ok := s.Get("P49"); !ok {
			t.Errorf("round %d: P49 gone", round)
		}
		if p := mustSubmit(t, s, fmt.Sprint("new", round), "n"); p.Seq != uint64(51+round) {
			t.Errorf("round %d: Seq of a new patch %d, want %d", round, p.Seq, 51+round)
		}
		s.Close()
	}
}

// TestPruneWhileBusy: a prune running beside submissions and a worker
// never expires a queued or applying patch, and the store stays
// consistent (run with -race).
func TestPruneWhileBusy(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			id := fmt.Sprint("P", i)
			mustSubmit(t, s, id, id)
		}
	}()
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		for range n {
			p, err := s.Next(ctx)
			if err != nil {
				return
			}
			mustUpdate(t, s, p.ID, setState(StateApplying))
			mustUpdate(t, s, p.ID, func(q *Patch) {
				q.State = StateApplied
				q.Files = []FileChange{{Path: fmt.Sprint("f", p.Seq%7)}}
			})
		}
	}()
	var expired []ExpiredPatch
	for range 50 {
		res, err := s.Prune(ctx, PrunePolicy{MaxCount: 5}, false)
		if err != nil {
			t.Fatal(err)
		}
		expired = append(expired, res.Expired...)
	}
	<-done
	<-worked
	res, err := s.Prune(ctx, PrunePolicy{MaxCount: 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	expired = append(expired, res.Expired...)
	for _, p := range expired {
		if p.State == StateQueued || p.State == StateApplying {
			t.Errorf("expired %s while %s", p.ID, p.State)
		}
	}
	// Left: the 5 newest, and the newest patch of each of the 7 files.
	if st := s.Stats(); st.Total > 12 || st.Total+len(expired) != n {
		t.Errorf("after pruning: %d patches kept, %d expired; want at most 12 kept, %d in all", st.Total, len(expired), n)
	}
}

// TestPruneSweepsLeftBlobs: blob directories a crash left behind after
// their patches' expire record are removed by the next prune (not by a
// dry run); those of patches held stay.
func TestPruneSweepsLeftBlobs(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true})
	for _, id := range []string{".old", "keep"} {
		mustSubmit(t, s, id, id)
		mustUpdate(t, s, id, setState(StateFailed))
		if err := s.PutBlob(id, "backup", []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := s.Prune(context.Background(), PrunePolicy{MaxCount: 1}, false); err != nil || len(res.Expired) != 1 {
		t.Fatalf("Prune = %v, %v; want .old expired", expiredIDs(res.Expired), err)
	}
	// What a crash between the record and the removal leaves.
	if err := s.PutBlob(".old", "backup", []byte("b")); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "blobs", "%2Eold")
	if _, err := os.Stat(left); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		if _, err := s.Prune(context.Background(), PrunePolicy{MaxCount: 1}, dry); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(left)
		if gone := errors.Is(err, os.ErrNotExist); gone != !dry {
			t.Errorf("dry run %v: the left blob directory: %v", dry, err)
		}
	}
	if _, err := s.Blob("keep", "backup"); err != nil {
		t.Errorf("blob of the patch kept: %v", err)
	}
}

// TestPruneNothingDueReadsOneChunk: the daemon prunes every hour; when
// nothing is old enough and the count is within the limit, that prune
// must not read the whole history (it used to walk every patch to find
// which ones a revert needs, whatever the policy).
func TestPruneNothingDueReadsOneChunk(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const n = 3*pruneChunk + 10
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if _, _, err := s.Submit(ctx, Patch{ID: fmt.Sprintf("p%05d", i)}, []byte("b")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	before := s.walked.Load()
	res, err := s.Prune(ctx, PrunePolicy{MaxAge: 90 * 24 * time.Hour, MaxCount: 2 * n}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != n || len(res.Expired) != 0 || res.OldestKept.IsZero() {
		t.Fatalf("Prune = kept %d, expired %d, oldest kept %v; want %d kept, none expired, an oldest", res.Kept, len(res.Expired), res.OldestKept, n)
	}
	if walked := s.walked.Load() - before; walked > dueSample {
		t.Fatalf("a prune with nothing due read %d patches of %d; want at most %d (each read touches index.db pages that stay resident)", walked, n, dueSample)
	}
	// Something due: it is still found.
	res, err = s.Prune(ctx, PrunePolicy{MaxCount: n - 5}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != n {
		t.Fatalf("dry run kept %d, want %d", res.Kept, n)
	}
}
