package store

import (
	"context"
	"strings"
	"testing"
)

// TestDiffStaysOnDisk: the index keeps no diff in memory, yet every reader
// gets it whole: Get, List, Next, the patch Update hands to its function and
// returns, after later updates, a reopen and a compaction.
func TestDiffStaysOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	diff := "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-\"old\" \\ é\n+new \u2028 😀 \x01\n" + strings.Repeat("+more\n", 2000)
	mustSubmit(t, s, "D1", "body")
	mustSubmit(t, s, "D2", "body")
	mustUpdate(t, s, "D1", setState(StateApplying))
	got, err := s.Update(ctx, "D1", func(p *Patch) error { p.State, p.Diff = StateApplied, diff; return nil })
	if err != nil || got.Diff != diff {
		t.Fatalf("Update returned diff of %d bytes, %v; want the %d bytes given", len(got.Diff), err, len(diff))
	}
	inMemory := func(when string) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		if e := s.idx.patches["D1"]; e.p.Diff != "" || e.diff.n == 0 {
			t.Errorf("%s: the index holds %d bytes of D1's diff (ref %+v), want none", when, len(e.p.Diff), e.diff)
		}
	}
	check := func(when string) {
		t.Helper()
		inMemory(when)
		if p, ok := s.Get("D1"); !ok || p.Diff != diff {
			t.Errorf("%s: Get(D1).Diff = %d bytes, want %d", when, len(p.Diff), len(diff))
		}
		ps, _ := s.List("", 10, "")
		if len(ps) != 2 || ps[1].ID != "D1" || ps[1].Diff != diff || ps[0].Diff != "" {
			t.Errorf("%s: List = %d patches, D1's diff %d bytes; want D1's whole diff", when, len(ps), len(ps[1].Diff))
		}
	}
	check("after the update")
	// An update of another field keeps the diff (the record is rewritten whole).
	if _, err := s.Update(ctx, "D1", func(p *Patch) error {
		if p.Diff != diff {
			t.Errorf("Update's function got a diff of %d bytes, want %d", len(p.Diff), len(diff))
		}
		p.State = StateReverted
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	check("after a revert")
	s.Close()
	s = openTest(t, dir, Options{})
	check("after a reopen")
	for range 30 {
		mustUpdate(t, s, "D2", func(p *Patch) { p.Error = "x" })
	}
	s.Close()
	s = openTest(t, dir, Options{compactMinBytes: 1})
	check("after compaction")
	s.Close()
	s = openTest(t, dir, Options{})
	check("after a reopen of the compacted journal")
}
