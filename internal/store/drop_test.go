package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExpiryDropsSegments: once retention expired every patch stored in a
// segment, and a checkpoint took that in, the segment file is removed;
// the patches kept, their bodies and blobs, the tombstones and new
// submissions are all as before, after a reopen too, and a rebuild of
// index.db from the segments left keeps the kept patches and the expiry.
// Before, a prune freed no journal space at all.
func TestExpiryDropsSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentBytes: 8 << 10}
	s := openTest(t, dir, opts)
	ctx := context.Background()
	for i := range 200 {
		id := fmt.Sprint("x", i)
		mustSubmit(t, s, id, strings.Repeat("b", 300))
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, func(p *Patch) { p.State, p.Error = StateFailed, "no" })
	}
	// One old patch kept: the newest of its file.
	mustUpdate(t, s, "x150", func(p *Patch) {}) // a later record, same body segment
	before, _ := listSegments(filepath.Join(dir, "seg"))
	res, err := s.Prune(ctx, PrunePolicy{MaxCount: 20}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 180 {
		t.Fatalf("Prune expired %d, want 180", len(res.Expired))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := listSegments(filepath.Join(dir, "seg"))
	t.Logf("segments: %d before the prune, %d after", len(before), len(after))
	if len(after) >= len(before)/2 {
		t.Errorf("segments after expiring 180 of 200 patches: %d of %d left, want most dropped", len(after), len(before))
	}
	check := func(when string, s *Store) {
		t.Helper()
		if st := s.Stats(); st.Total != 20 && st.Total != 21 {
			t.Errorf("%s: %d patches, want 20 (21 with the one submitted after)", when, st.Total)
		}
		for i := 180; i < 200; i++ {
			id := fmt.Sprint("x", i)
			if p, ok := s.Get(id); !ok || p.State != StateFailed {
				t.Errorf("%s: Get(%s) = %v, %v", when, id, p.State, ok)
			}
			if b, err := s.Body(id); err != nil || len(b) != 300 {
				t.Errorf("%s: Body(%s) = %d bytes, %v", when, id, len(b), err)
			}
		}
		for _, id := range []string{"x0", "x99", "x179"} {
			if _, ok := s.Expired(id); !ok {
				t.Errorf("%s: %s not expired", when, id)
			}
		}
	}
	s = openTest(t, dir, opts)
	check("reopened", s)
	mustSubmit(t, s, "new", "n")
	s.Close()

	// Without index.db the rebuild reads the segments there are.
	os.Remove(filepath.Join(dir, "index.db"))
	var logs bytes.Buffer
	s = openTest(t, dir, Options{NoSync: true, SegmentBytes: 8 << 10, Logger: logTo(t, &logs)})
	check("rebuilt", s)
	if !strings.Contains(logs.String(), "segments are missing") {
		t.Errorf("the rebuild did not say segments are missing; log:\n%s", logs.String())
	}
}
