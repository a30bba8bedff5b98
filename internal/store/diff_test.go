package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDiffStaysOnDisk: the index keeps no diff in memory, yet every reader
// gets it whole: Get, List, Next, the patch Update hands to its function and
// returns, after later updates, a reopen and records spread over segments.
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
		if e := s.idx.patches["D1"]; e != nil && (e.patch().Diff != "" || e.rest().diff.n == 0) {
			t.Errorf("%s: the index holds %d bytes of D1's diff (ref %+v), want none", when, len(e.patch().Diff), e.rest().diff)
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
	s = openTest(t, dir, Options{SegmentBytes: 1})
	for range 3 {
		mustUpdate(t, s, "D2", func(p *Patch) { p.Error = "y" })
	}
	check("after updates in segments of their own")
	s.Close()
	s = openTest(t, dir, Options{})
	check("after a reopen of several segments")
}

// TestReplayBatches: replay decodes records in batches that hold at most
// replayArena bytes of metas; records larger than that, and many small
// ones, come back whole and in order.
func TestReplayBatches(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true})
	big := func(i int) string { return strings.Repeat(string(rune('a'+i))+"\n", replayArena/2+i) } // over the arena as JSON
	for i := range 3 {
		id := "B" + string(rune('0'+i))
		mustSubmit(t, s, id, "body")
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, func(p *Patch) { p.State, p.Diff = StateApplied, big(i) })
	}
	const small = 3000
	for i := range small {
		mustSubmit(t, s, "s"+strings.Repeat("x", i%7)+string(rune('A'+i%26))+"-"+itoa(i), "b")
	}
	s.Close()
	s = openTest(t, dir, Options{})
	for i := range 3 {
		id := "B" + string(rune('0'+i))
		if p, ok := s.Get(id); !ok || p.Diff != big(i) || p.State != StateApplied {
			t.Errorf("%s after replay: %s, diff %d bytes; want applied with %d", id, p.State, len(p.Diff), len(big(i)))
		}
	}
	if st := s.Stats(); st.Total != 3+small {
		t.Errorf("after replay the store holds %d patches, want %d", st.Total, 3+small)
	}
	if p := mustSubmit(t, s, "next", "x"); p.Seq != 3+small+1 {
		t.Errorf("next Seq after replay = %d, want %d", p.Seq, 3+small+1)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestFinishedSince: only patches finished or reverted at or after the
// time, with their diffs.
func TestFinishedSince(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	now := time.Now()
	for i, at := range []time.Time{now.Add(-time.Hour), now.Add(-time.Minute), {}} {
		id := "F" + itoa(i)
		mustSubmit(t, s, id, "b")
		if at.IsZero() {
			continue // still queued
		}
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, func(p *Patch) { p.State, p.Diff, p.FinishedAt = StateApplied, "diff of "+id, at })
	}
	mustUpdate(t, s, "F0", func(p *Patch) { p.State, p.RevertedAt = StateReverted, now })
	var got []Patch
	err := s.FinishedSince(now.Add(-10*time.Minute), func(p Patch) error { got = append(got, p); return nil })
	if err != nil || len(got) != 2 || got[0].ID != "F0" || got[1].ID != "F1" || got[1].Diff != "diff of F1" || got[0].Diff != "diff of F0" {
		t.Errorf("FinishedSince(10 minutes ago) = %+v, want F0 (reverted now) and F1 (finished a minute ago), with diffs", got)
	}
}

// TestFinishedSinceLongHistory: FinishedSince walks a history longer than
// one hold of the lock, finds every finished patch once and in order, and
// calls fn without the store's lock: fn can use the store (with the lock
// held, Get would wait for ever), even commit to it.
func TestFinishedSinceLongHistory(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	now := time.Now()
	const n = 3*finishedChunk + 7
	for i := range n {
		id := "F" + itoa(i)
		mustSubmit(t, s, id, "b")
		if i%3 == 2 {
			continue // still queued
		}
		mustUpdate(t, s, id, setState(StateApplying))
		mustUpdate(t, s, id, func(p *Patch) { p.State, p.FinishedAt = StateApplied, now })
	}
	var seen []string
	err := s.FinishedSince(now.Add(-time.Minute), func(p Patch) error {
		if q, ok := s.Get(p.ID); !ok || q.State != StateApplied {
			return fmt.Errorf("Get(%s) in fn = %v, %v", p.ID, q.State, ok)
		}
		if len(seen)%100 == 0 {
			mustSubmit(t, s, "new"+itoa(len(seen)), "b")
		}
		seen = append(seen, p.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		if i%3 != 2 {
			want = append(want, "F"+itoa(i))
		}
	}
	if !slices.Equal(seen, want) {
		t.Errorf("FinishedSince saw %d patches, want %d in order of arrival", len(seen), len(want))
	}
	stop := errors.New("stop")
	if err := s.FinishedSince(time.Time{}, func(Patch) error { return stop }); err != stop {
		t.Errorf("FinishedSince = %v, want fn's error", err)
	}
}
