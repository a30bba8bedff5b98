package patchsvc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// TestStatusRecent: Status counts the patches applied and failed in the
// last hour and day from the events, those committed before the first
// Status (the seed) and after it (followed), without reading the history.
func TestStatusRecent(t *testing.T) {
	f := newFixture(t)
	f.run()
	ctx := context.Background()
	f.submit(block("r1", "a = 1", "a = 2"))
	f.submit(block("r2", "no such text", "x"))
	for _, id := range []string{"r1", "r2"} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		f.svc.Wait(wctx, id)
		cancel()
	}
	// The seed: both outcomes committed before the first Status. Their
	// events are numbered just after the batch: poll.
	var rc *api.Recent
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, err := f.svc.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rc = st.Recent; rc != nil && rc.AppliedHour+rc.FailedHour == 2 {
			break
		}
	}
	if rc == nil || rc.AppliedHour != 1 || rc.FailedHour != 1 || rc.AppliedDay != 1 || rc.FailedDay != 1 || rc.Since.After(time.Now()) {
		t.Fatalf("Recent after one applied and one failed = %+v, want 1 and 1 in the hour and the day", rc)
	}
	// Followed: one more applied after the first Status.
	f.submit(block("r3", "b = 2\nb = 2", "b = 3"))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, _ := f.svc.Status(ctx)
		if rc = st.Recent; rc.AppliedHour == 2 {
			break
		}
	}
	if rc.AppliedHour != 2 || rc.AppliedDay != 2 || rc.FailedDay != 1 {
		t.Errorf("Recent after another applied = %+v, want 2 applied and 1 failed", rc)
	}
}

// TestStatusDoesNotWaitForSeed: Status (every /health calls it) answers
// while the recent counts' seed is still being read, without Recent;
// the counts come once it is read.
func TestStatusDoesNotWaitForSeed(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.svc.recent.seedGate = func() { <-release }
	f.run()
	ctx := context.Background()
	done := make(chan api.Status, 1)
	go func() {
		st, err := f.svc.Status(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	select {
	case st := <-done:
		if st.Recent != nil {
			t.Errorf("Status before the seed was read: Recent = %+v, want none", st.Recent)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Status waited for the recent counts' seed")
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		st, err := f.svc.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Recent != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Recent still absent 10 s after the seed could be read")
		}
	}
}

// TestRecentBuckets: an outcome counts in the hour for 60 minutes and in
// the day for 24 hours, and a bucket a day old is reused, not added to.
func TestRecentBuckets(t *testing.T) {
	var r recent
	now := time.Date(2026, 12, 5, 12, 0, 30, 0, time.UTC)
	r.since = now.Add(-48 * time.Hour)
	r.add(now.Add(-30*time.Minute), true)
	r.add(now.Add(-2*time.Hour), false)
	r.add(now.Add(-25*time.Hour), true) // outside the day
	got := r.counts(now)
	if got.AppliedHour != 1 || got.FailedHour != 0 || got.AppliedDay != 1 || got.FailedDay != 1 {
		t.Errorf("counts = %+v, want 1 applied in the hour, 1 applied and 1 failed in the day", got)
	}
	r.add(now.Add(-time.Hour-1), true) // the same bucket as 25 h ago, a day later
	if got := r.counts(now); got.AppliedDay != 2 {
		t.Errorf("counts after a bucket's reuse = %+v, want 2 applied in the day", got)
	}
}

// TestBody: Body answers the body a patch was sent with; an unknown id is
// not_found.
func TestBody(t *testing.T) {
	f := newFixture(t)
	body := block("b1", "a = 1", "a = 2")
	f.submit(body)
	b, err := f.svc.Body(context.Background(), "b1")
	if err != nil || string(b) != body {
		t.Errorf("Body(b1) = %q, %v, want the body sent", b, err)
	}
	_, err = f.svc.Body(context.Background(), "nope")
	if e := api.ErrorOf(err); e == nil || e.Kind != api.KindNotFound || !strings.Contains(e.Message, "nope") {
		t.Errorf("Body(nope) = %v, want not_found naming it", err)
	}
}
