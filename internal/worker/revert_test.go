//go:build unix

package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

// slowCheck is a check that holds the worker until the test releases it:
// it marks that it started, then waits on a FIFO. It runs only for
// patches of slow.txt. release lets it finish.
func slowCheck(t *testing.T, dir string) (check config.Check, started func() bool, release func()) {
	t.Helper()
	fifo, mark := filepath.Join(dir, "gate"), filepath.Join(dir, "started")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The FIFO is opened (read-write: that does not wait for a writer)
	// before the mark is made, so that a release once the mark is seen
	// always finds its reader.
	check = config.Check{Name: "slow", Command: []string{"sh", "-c", `exec 3<>"$1"; : > "$0"; read x <&3`, mark, fifo},
		Timeout: time.Minute, Paths: []string{"slow.txt"}}
	started = func() bool { _, err := os.Stat(mark); return err == nil }
	released := false
	release = func() {
		if !released {
			released = true
			// Not blocking: a check that timed out left no reader.
			if fh, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				fh.Write([]byte("go\n"))
				fh.Close()
			}
		}
	}
	t.Cleanup(release)
	return check, started, release
}

// TestRevertBehindSlowPatch: a revert that cannot get the worker within
// its caller's deadline, because a slow patch occupies it, is refused as
// busy, naming the patch, and does nothing then or later; once the worker
// is free a revert is carried through, recorded and logged as an event.
func TestRevertBehindSlowPatch(t *testing.T) {
	dir := t.TempDir()
	check, started, release := slowCheck(t, dir)
	f := newFixture(t)
	f.stop()
	f.store.Close()
	f.checks = []config.Check{check}
	f.open()
	f.write("a.txt", "one\n", 0o644)
	f.write("slow.txt", "s0\n", 0o644)
	f.submit("R1", "a.txt", "one", "uno")
	f.run()
	if p := f.settle("R1"); p.State != store.StateApplied {
		t.Fatalf("R1 = %s %s, want applied", p.State, p.Error)
	}
	f.submit("S1", "slow.txt", "s0", "s1")
	waitUntil(t, "the slow check to start", started)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	type outcome struct {
		p   store.Patch
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := f.worker.Revert(ctx, "R1")
		done <- outcome{p, err}
	}()
	var got outcome
	select {
	case got = <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("Revert with a 200ms deadline still waits for the worker after 5s")
		release()
		got = <-done
	}
	if !errors.Is(got.err, ErrBusy) || !strings.Contains(got.err.Error(), "S1") || !strings.Contains(got.err.Error(), "not started") {
		t.Errorf("Revert behind a slow patch = %v, want ErrBusy naming S1 and saying the revert was not started", got.err)
	}
	release()
	if p := f.settle("S1"); p.State != store.StateApplied {
		t.Fatalf("S1 = %s %s, want applied", p.State, p.Error)
	}
	// The refused revert must not happen later, once the worker is free.
	time.Sleep(100 * time.Millisecond)
	if got := f.read("a.txt"); got != "uno\n" {
		t.Errorf("a.txt = %q after a refused revert, want the patch's content kept", got)
	}
	if p, _ := f.store.Get("R1"); p.State != store.StateApplied {
		t.Errorf("R1 = %s after a refused revert, want applied", p.State)
	}

	p, err := f.worker.Revert(context.Background(), "R1")
	if err != nil || p.State != store.StateReverted {
		t.Fatalf("Revert once the worker is free = %s, %v, want reverted", p.State, err)
	}
	if got := f.read("a.txt"); got != "one\n" {
		t.Errorf("a.txt after the revert = %q, want %q", got, "one\n")
	}
	if p, _ := f.store.Get("R1"); p.State != store.StateReverted || p.RevertedAt.IsZero() {
		t.Errorf("R1 in the store = %s (reverted at %v), want reverted", p.State, p.RevertedAt)
	}
	f.store.Close() // flushes the event log
	events, _ := os.ReadFile(filepath.Join(f.dir, "events.jsonl"))
	if n := strings.Count(string(events), `"event":"patch.reverted","id":"R1"`); n != 1 {
		t.Errorf("events.jsonl has %d patch.reverted events for R1, want 1:\n%s", n, events)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// endsWhen is a caller's context that ends the moment cond holds: here,
// once the revert has restored the file, so that "the caller gave up
// after the files were touched" is certain, not timed.
type endsWhen struct {
	context.Context
	cond func() bool
}

func (c endsWhen) Done() <-chan struct{} {
	if c.cond() {
		done := make(chan struct{})
		close(done)
		return done
	}
	return c.Context.Done()
}

func (c endsWhen) Err() error {
	if c.cond() {
		return context.Canceled
	}
	return c.Context.Err()
}

// TestRevertOutlivesItsCaller: a revert whose caller's context ends once
// it has restored the files is carried through all the same (committed
// under --git) and recorded reverted; a later revert is refused as not
// applied, naming the state, not as changed with an empty file list (the
// files restored under a patch still recorded applied, as once happened).
func TestRevertOutlivesItsCaller(t *testing.T) {
	for _, git := range []bool{false, true} {
		t.Run(fmt.Sprintf("git=%v", git), func(t *testing.T) {
			var f *fixture
			if git {
				f = gitFixture(t, "a.txt", "one\n")
			} else {
				f = newFixture(t)
				f.write("a.txt", "one\n", 0o644)
			}
			f.submit("R1", "a.txt", "one", "uno")
			f.run()
			if p := f.settle("R1"); p.State != store.StateApplied {
				t.Fatalf("R1 = %s %s, want applied", p.State, p.Error)
			}
			var ended atomic.Bool // for good, once the file was seen restored
			ctx := endsWhen{context.Background(), func() bool {
				if !ended.Load() && f.read("a.txt") == "one\n" {
					ended.Store(true)
				}
				return ended.Load()
			}}
			p, err := f.worker.Revert(ctx, "R1")
			if ctx.Err() == nil {
				t.Fatal("the caller's context did not end: the test tests nothing")
			}
			if err != nil || p.State != store.StateReverted {
				t.Fatalf("Revert whose caller left once the file was restored = %s, %v; want reverted", p.State, err)
			}
			if p, _ := f.store.Get("R1"); p.State != store.StateReverted || p.RevertedAt.IsZero() {
				t.Errorf("R1 in the store = %s, want reverted", p.State)
			}
			if got := f.read("a.txt"); got != "one\n" {
				t.Errorf("a.txt = %q, want restored", got)
			}
			if git {
				if got := gitCmd(t, f.ws, "log", "-1", "--format=%s"); got != "[REVERT R1] desc of R1" {
					t.Errorf("HEAD = %q, want the revert's commit", got)
				}
			}
			_, err = f.worker.Revert(context.Background(), "R1")
			if !errors.Is(err, ErrNotApplied) || errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "it is reverted") {
				t.Errorf("a later Revert = %v, want refused as not applied (it is reverted)", err)
			}
		})
	}
}
