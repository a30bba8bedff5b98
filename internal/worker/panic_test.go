package worker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// TestPanicWhilePlanningFailsOnlyThePatch: a panic in the planning
// goroutine fails that patch, saying so, logs the stack, and the next patch
// is applied by the same worker.
func TestPanicWhilePlanningFailsOnlyThePatch(t *testing.T) {
	f := newFixture(t)
	logs := &lockedBuffer{}
	f.log = slog.New(slog.NewTextHandler(logs, nil))
	f.store.Close()
	f.open()
	plan := f.worker.planFn
	f.worker.planFn = func(ctx context.Context, blk *patch.Block) (*txn, error) {
		if blk.ID == "boom" {
			panic("planner exploded")
		}
		return plan(ctx, blk)
	}
	f.write("a.txt", "hello\n", 0o644)
	f.submit("boom", "a.txt", "hello", "world")
	f.submit("after", "a.txt", "hello", "salut")
	f.run()
	want := "patchd hit an internal error while planning this patch: planner exploded; see log"
	if p := f.settle("boom"); p.State != store.StateFailed || p.Error != want || p.Code != CodeInternal {
		t.Fatalf("boom: %s %q (code %q), want failed with %q, %s", p.State, p.Error, p.Code, want, CodeInternal)
	}
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after the panic: %s %q, want applied", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "salut\n" {
		t.Errorf("a.txt = %q, want the second patch's change alone", got)
	}
	waitLog(t, logs, "panic_test.go") // the stack, down to the panic
	if !strings.Contains(logs.String(), "component=worker") {
		t.Errorf("the panic is not logged as the worker's (component=worker):\n%s", logs)
	}
	if n, err := f.store.BeginAttempt("after"); n != 0 || err != nil {
		t.Errorf("BeginAttempt after a recovered panic = %d, %v; want 0 deaths (a recovered panic is no crash)", n, err)
	}
	f.store.EndAttempt()
}

// TestPanicWhileParsingFailsOnlyThePatch: a panic while the worker parses
// a stored patch fails that patch, and the next one is applied.
func TestPanicWhileParsingFailsOnlyThePatch(t *testing.T) {
	f := newFixture(t)
	f.worker.parse = func(body []byte, o patch.ParseOptions) (*patch.Block, error) {
		if bytes.Contains(body, []byte(`"boom"`)) {
			panic("parser exploded")
		}
		return patch.ParseWith(body, o)
	}
	f.write("a.txt", "hello\n", 0o644)
	f.submit("boom", "a.txt", "hello", "world")
	f.submit("after", "a.txt", "hello", "salut")
	f.run()
	want := "patchd hit an internal error while planning this patch: parser exploded; see log"
	if p := f.settle("boom"); p.State != store.StateFailed || p.Error != want || p.Code != CodeInternal {
		t.Fatalf("boom: %s %q (code %q), want failed with %q, %s", p.State, p.Error, p.Code, want, CodeInternal)
	}
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after the panic: %s %q, want applied", p.State, p.Error)
	}
}

// TestPanicWhilePreviewing: a panic while a preview is planned is the
// preview's error, and the worker previews and applies afterwards.
func TestPanicWhilePreviewing(t *testing.T) {
	f := newFixture(t)
	plan := f.worker.planFn
	f.worker.planFn = func(ctx context.Context, blk *patch.Block) (*txn, error) {
		if blk.ID == "boom" {
			var m map[string]int
			m["x"]++ // a real runtime error, not only a panic(string)
		}
		return plan(ctx, blk)
	}
	f.write("a.txt", "hello\n", 0o644)
	parse := func(id string) *patch.Block {
		blk, err := patch.Parse([]byte(`{"id":"` + id + `","role":"r","target_file":"a.txt","patch":{"search":"hello","replace":"world"}}`))
		if err != nil {
			t.Fatal(err)
		}
		return blk
	}
	_, _, err := f.worker.Preview(context.Background(), parse("boom"))
	if err == nil || !strings.HasPrefix(err.Error(), "patchd hit an internal error while planning this patch: assignment to entry in nil map") {
		t.Fatalf("Preview = %v, want the internal error", err)
	}
	if diff, _, err := f.worker.Preview(context.Background(), parse("fine")); err != nil || !strings.Contains(diff, "+world") {
		t.Fatalf("the preview after the panic = %q, %v; want its diff", diff, err)
	}
	f.submit("after", "a.txt", "hello", "salut")
	f.run()
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after the panic: %s %q, want applied", p.State, p.Error)
	}
}
