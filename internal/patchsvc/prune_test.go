package patchsvc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/worker"
)

// TestPrune: a prune expires what the policy selects but the newest patch
// of a file, deletes the summaries of the expired patches (dated, and a
// flat one an older patchd wrote), and every use of an expired id answers
// gone, code expired, saying when; a dry run changes nothing.
func TestPrune(t *testing.T) {
	f := newFixture(t)
	f.run()
	ctx := context.Background()
	wait := func(id string) api.PatchView {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := f.svc.Wait(wctx, id)
		if err != nil {
			t.Fatalf("Wait(%s) = %v", id, err)
		}
		return v
	}
	for _, b := range []struct{ id, search, replace string }{
		{"P1", "a = 1", "a = 2"}, {"F1", "absent", "x"}, {"P2", "a = 2", "a = 3"},
	} {
		if _, err := f.submit(block(b.id, b.search, b.replace)); err != nil {
			t.Fatal(err)
		}
		wait(b.id)
	}
	sums := map[string]string{}
	for _, id := range []string{"P1", "F1", "P2"} {
		v, _ := f.svc.Get(ctx, id)
		sums[id] = worker.SummaryPath(filepath.Join(f.dir, "summaries"), id, v.ReceivedAt)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sums[id]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no summary of %s at %s", id, sums[id])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	flat := filepath.Join(f.dir, "summaries", "F1.md")
	os.WriteFile(flat, []byte("# an old summary\n"), 0o644)

	dry, err := f.svc.Prune(ctx, api.PruneRequest{MaxCount: 1, DryRun: true})
	if err != nil || dry.Expired != 2 || dry.Kept != 1 || !dry.DryRun || dry.BytesFreed == 0 {
		t.Fatalf("dry run = %+v, %v; want 2 expired (P1 F1), 1 kept, bytes > 0", dry, err)
	}
	for _, id := range []string{"P1", "F1"} {
		if _, err := f.svc.Get(ctx, id); err != nil {
			t.Errorf("after a dry run Get(%s) = %v", id, err)
		}
	}
	res, err := f.svc.Prune(ctx, api.PruneRequest{MaxCount: 1})
	if err != nil || res.Expired != 2 || res.Kept != 1 || res.BytesFreed != dry.BytesFreed {
		t.Fatalf("Prune = %+v, %v; want 2 expired, 1 kept, %d bytes freed", res, err, dry.BytesFreed)
	}
	for _, path := range []string{sums["P1"], sums["F1"], flat} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("summary %s: %v, want deleted", path, err)
		}
	}
	if _, err := os.Stat(sums["P2"]); err != nil {
		t.Errorf("summary of P2 (kept): %v", err)
	}
	const want = `patch "P1" expired at `
	_, err = f.svc.Get(ctx, "P1")
	wantError(t, "Get", err, api.KindGone, api.CodeExpired, "id", want)
	_, err = f.svc.Revert(ctx, "P1")
	wantError(t, "Revert", err, api.KindGone, api.CodeExpired, "id", want)
	_, err = f.svc.Wait(ctx, "P1")
	wantError(t, "Wait", err, api.KindGone, api.CodeExpired, "id", want)
	_, err = f.svc.Drop(ctx, "P1")
	wantError(t, "Drop", err, api.KindGone, api.CodeExpired, "id", want)
	_, err = f.submit(block("P1", "a = 3", "a = 4"))
	wantError(t, "Submit", err, api.KindGone, api.CodeExpired, "id", want)
	_, err = f.svc.Get(ctx, "never")
	wantError(t, "Get of an unknown id", err, api.KindNotFound, api.CodePatchNotFound, "id", "no patch")
	if _, err := f.svc.Revert(ctx, "P2"); err != nil {
		t.Errorf("Revert of P2, the newest patch of its file: %v", err)
	}
}
