//go:build unix

package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// previewBlock parses a search/replace patch of file, for Preview.
func previewBlock(t *testing.T, id, file, search, replace string) *patch.Block {
	t.Helper()
	blk, err := patch.Parse([]byte(`{"id":"` + id + `","role":"r","target_file":"` + file + `","patch":{"search":"` + search + `","replace":"` + replace + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

// previewOutcome is what Preview returned.
type previewOutcome struct {
	diff  string
	files []string
	err   error
}

// previewNow runs Preview and returns its outcome; a preview that has not
// answered after 20 s fails the test (it waits behind the worker; the
// slow check's own timeout is a minute). The bound only turns a hang into
// a failure: nothing here measures time.
func previewNow(t *testing.T, w *Worker, blk *patch.Block) previewOutcome {
	t.Helper()
	done := make(chan previewOutcome, 1)
	go func() {
		diff, files, err := w.Preview(context.Background(), blk)
		done <- previewOutcome{diff, files, err}
	}()
	select {
	case got := <-done:
		return got
	case <-time.After(20 * time.Second):
		t.Fatalf("Preview of %s has not answered after 20 s: it waits behind the worker", blk.ID)
		return previewOutcome{}
	}
}

// TestPreviewDoesNotWaitForChecks: a preview made while a patch's check
// holds the worker answers while that check still runs (the check waits
// for the test to release it, so "still runs" is certain, not timed). A
// preview of the file being applied sees it as the patch wrote it.
func TestPreviewDoesNotWaitForChecks(t *testing.T) {
	dir := t.TempDir()
	check, started, release := slowCheck(t, dir)
	f := newFixture(t)
	f.stop()
	f.store.Close()
	f.checks = []config.Check{check}
	f.open()
	f.write("a.txt", "one\n", 0o644)
	f.write("slow.txt", "s0\n", 0o644)
	f.submit("S1", "slow.txt", "s0", "s1")
	f.run()
	waitUntil(t, "the slow check to start", started)

	got := previewNow(t, f.worker, previewBlock(t, "V1", "a.txt", "one", "uno"))
	if p, _ := f.store.Get("S1"); p.State != store.StateApplying {
		t.Errorf("S1 = %s when the preview answered, want applying (its check still held)", p.State)
	}
	if got.err != nil || !strings.Contains(got.diff, "-one\n+uno") || len(got.files) != 1 || got.files[0] != "a.txt" {
		t.Errorf("Preview while a check runs = %q %v %v, want the diff of a.txt", got.diff, got.files, got.err)
	}
	got = previewNow(t, f.worker, previewBlock(t, "V2", "slow.txt", "s1", "s2"))
	if got.err != nil || !strings.Contains(got.diff, "-s1\n+s2") {
		t.Errorf("Preview of the file being applied = %q %v, want it as the patch wrote it (s1 to s2)", got.diff, got.err)
	}
	release()
	if p := f.settle("S1"); p.State != store.StateApplied {
		t.Fatalf("S1 = %s %s, want applied", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "one\n" {
		t.Errorf("a.txt = %q after a preview, want it unchanged", got)
	}
}

// TestGitPreviewDoesNotWaitForChecks: under --git too, a preview of
// another file answers while a patch's check holds the worker; a preview
// of the file written but not yet committed is refused as an apply would
// be at that moment, for uncommitted changes.
func TestGitPreviewDoesNotWaitForChecks(t *testing.T) {
	dir := t.TempDir()
	check, started, release := slowCheck(t, dir)
	f := gitFixture(t, "a.txt", "one\n", "slow.txt", "s0\n")
	f.stop()
	f.store.Close()
	f.checks = []config.Check{check}
	f.open()
	f.submit("S1", "slow.txt", "s0", "s1")
	f.run()
	waitUntil(t, "the slow check to start", started)

	got := previewNow(t, f.worker, previewBlock(t, "V1", "a.txt", "one", "uno"))
	if p, _ := f.store.Get("S1"); p.State != store.StateApplying {
		t.Errorf("S1 = %s when the preview answered, want applying (its check still held)", p.State)
	}
	if got.err != nil || !strings.Contains(got.diff, "-one\n+uno") {
		t.Errorf("Preview while a check runs = %q %v, want the diff of a.txt", got.diff, got.err)
	}
	got = previewNow(t, f.worker, previewBlock(t, "V2", "slow.txt", "s1", "s2"))
	if got.err == nil || !strings.Contains(got.err.Error(), "uncommitted changes to slow.txt") {
		t.Errorf("Preview of the file written, not yet committed = %q %v, want refused for uncommitted changes", got.diff, got.err)
	}
	release()
	if p := f.settle("S1"); p.State != store.StateApplied {
		t.Fatalf("S1 = %s %s, want applied", p.State, p.Error)
	}
	if got := gitCmd(t, f.ws, "log", "-1", "--format=%s"); got != "[PATCH S1] desc of S1" {
		t.Errorf("HEAD = %q, want S1's commit", got)
	}
}

// TestGitPreviewsDuringCommits: previews made without pause while the
// worker commits patch after patch never make a commit fail: a preview's
// git commands take no lock of the index (see also
// TestGitPreviewTakesNoIndexLock, which watches for one).
func TestGitPreviewsDuringCommits(t *testing.T) {
	const patches = 12
	f := gitFixture(t, "a.txt", "one\n", "b.txt", "b0\n")
	ctx, cancel := context.WithCancel(context.Background())
	previews := make(chan int)
	go func() {
		n := 0
		defer func() { previews <- n }()
		blk := previewBlock(t, "V", "a.txt", "one", "uno")
		for ctx.Err() == nil {
			if _, _, err := f.worker.Preview(ctx, blk); err != nil && ctx.Err() == nil {
				t.Errorf("Preview during commits: %v", err)
				return
			}
			n++
		}
	}()
	for i := range patches {
		f.submit(fmt.Sprintf("B%d", i), "b.txt", fmt.Sprintf("b%d", i), fmt.Sprintf("b%d", i+1))
	}
	f.run()
	for i := range patches {
		if p := f.settle(fmt.Sprintf("B%d", i)); p.State != store.StateApplied {
			t.Errorf("B%d = %s %q, want applied", i, p.State, p.Error)
		}
	}
	cancel()
	t.Logf("%d previews during %d commits", <-previews, patches)
	if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
		t.Errorf("git status after the patches = %q, want clean", got)
	}
}
