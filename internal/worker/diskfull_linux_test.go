package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

// TestFullWorkspaceWaits: when the workspace's file system is full, a
// patch is not failed (nothing about it is wrong): it goes back to the
// queue with the cause as its note, the patches after it wait behind it,
// and all apply, in order, once there is space again. Needs root to mount
// a small tmpfs.
func TestFullWorkspaceWaits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the workspace")
	}
	f := newFixture(t)
	f.store.Close()
	if err := syscall.Mount("tmpfs", f.ws, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("mount tmpfs on %s: %v", f.ws, err)
	}
	t.Cleanup(func() { syscall.Unmount(f.ws, syscall.MNT_DETACH) })
	f.open() // the workspace opened on the tmpfs
	f.write("a.txt", "v0\n", 0o644)
	// Fill the file system to the last byte.
	filler := filepath.Join(f.ws, "filler")
	fh, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 4096)
	for {
		if _, err := fh.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for {
		if _, err := fh.Write(chunk[:1]); err != nil {
			break
		}
	}
	fh.Close()

	f.submit("W1", "a.txt", "v0", "v1")
	f.submit("W2", "a.txt", "v1", "v2")
	f.run()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := f.store.Get("W1")
		if p.State == store.StateQueued && strings.Contains(p.Error, "no space left on device") {
			break
		}
		if p.State != store.StateQueued && p.State != store.StateApplying || time.Now().After(deadline) {
			t.Fatalf("W1 on a full workspace = %s %q, want queued with the cause noted", p.State, p.Error)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p, _ := f.store.Get("W2"); p.State != store.StateQueued {
		t.Errorf("W2 = %s while W1 waits, want queued behind it", p.State)
	}
	if got := f.read("a.txt"); got != "v0\n" {
		t.Errorf("a.txt = %q while the disk is full, want it untouched", got)
	}
	os.Remove(filler)
	// The worker tries again within its backoff (1 s, then 2 s).
	for _, id := range []string{"W1", "W2"} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			p, _ := f.store.Get(id)
			if p.State == store.StateApplied {
				if p.Error != "" {
					t.Errorf("%s applied with the note %q left on it", id, p.Error)
				}
				break
			}
			if p.State == store.StateFailed || time.Now().After(deadline) {
				t.Fatalf("%s after space came back = %s %q, want applied", id, p.State, p.Error)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := f.read("a.txt"); got != "v2\n" {
		t.Errorf("a.txt = %q, want both patches applied in order", got)
	}
}

// TestWaitIsBounded: a patch that keeps waiting for the workspace fails in
// the end, naming the cause and how long it waited, so that the patches
// behind it are not held for good.
func TestWaitIsBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the workspace")
	}
	f := newFixture(t)
	f.store.Close()
	if err := syscall.Mount("tmpfs", f.ws, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs on %s: %v", f.ws, err)
	}
	t.Cleanup(func() { syscall.Unmount(f.ws, syscall.MNT_DETACH) })
	f.open()
	f.worker.waitLimit = time.Second
	f.write("a.txt", "v0\n", 0o644)
	fh, _ := os.Create(filepath.Join(f.ws, "filler"))
	for {
		if _, err := fh.Write(make([]byte, 512)); err != nil {
			break
		}
	}
	fh.Close()
	f.submit("G1", "a.txt", "v0", "v1")
	f.run()
	p := f.settle("G1")
	if p.State != store.StateFailed || !strings.Contains(p.Error, "no space left on device") || !strings.Contains(p.Error, "gave up after waiting") {
		t.Errorf("G1 after its wait limit = %s %q, want failed naming the cause and the wait", p.State, p.Error)
	}
}

// TestRecordDoesNotFit: the state dir's disk fills up after a patch was
// written (here a check fills it, leaving a few KiB), so that the record
// of the patch as applied, which carries its diff, does not fit. The patch
// must not stay applying: its files are put back and it waits as queued,
// with the cause as its note; once there is space again it is applied,
// once. Needs root to mount a small tmpfs for the store.
func TestRecordDoesNotFit(t *testing.T) {
	f, filler, orig := recordDoesNotFit(t)
	f.submit("D1", "a.txt", "x", "xy")
	f.run()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := f.store.Get("D1")
		if p.State == store.StateQueued && strings.Contains(p.Error, "no space left on device") {
			t.Logf("D1 waits: %s", p.Error)
			break
		}
		if p.State != store.StateQueued && p.State != store.StateApplying || time.Now().After(deadline) {
			t.Fatalf("D1 when its record does not fit = %s %q, want queued with the cause noted", p.State, p.Error)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.read("a.txt"); got != orig {
		t.Errorf("a.txt while D1 waits is %d bytes, want its content before the patch (%d bytes)", len(got), len(orig))
	}
	os.Remove(filler)
	p := f.settle("D1")
	if p.State != store.StateApplied || p.Error != "" || !strings.Contains(p.Diff, "+line 999 xy") {
		t.Fatalf("D1 after space came back = %s %q (diff %d bytes), want applied with its diff", p.State, p.Error, len(p.Diff))
	}
	if got, want := f.read("a.txt"), strings.ReplaceAll(orig, "x", "xy"); got != want {
		t.Errorf("a.txt after D1 is %d bytes, want the patch applied once (%d bytes)", len(got), len(want))
	}
}

// recordDoesNotFit sets up a worker whose store is on a 512 KiB tmpfs and
// whose check, run once, fills that file system but 16 KiB, and a.txt (its
// content is orig) whose patch D1 ("x" → "xy" on every line) has a diff
// that does not fit then.
func recordDoesNotFit(t *testing.T) (f *fixture, filler, orig string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for the store")
	}
	f = newFixture(t)
	f.stop()
	f.store.Close()
	queue := filepath.Join(f.dir, "queue")
	if err := syscall.Mount("tmpfs", queue, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("mount tmpfs on %s: %v", queue, err)
	}
	t.Cleanup(func() { syscall.Unmount(queue, syscall.MNT_DETACH) })
	// Once, after the patch is written: fill the store's disk, then free
	// 16 KiB: room for a small record, not for the diff.
	filler = filepath.Join(queue, "filler")
	once := filepath.Join(f.dir, "filled")
	f.checks = []config.Check{{Name: "fill", Timeout: time.Minute, Command: []string{"sh", "-c",
		`[ -e "$1" ] && exit 0; : > "$1"; cat /dev/zero > "$0" 2>/dev/null; truncate -s -16K "$0"`, filler, once}}}
	f.open()
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "line %d x\n", i)
	}
	f.write("a.txt", b.String(), 0o644)
	return f, filler, b.String()
}

// TestRecordNeverFits: a patch whose record keeps not fitting fails after
// the wait limit, naming the cause and the wait, with its files as before.
func TestRecordNeverFits(t *testing.T) {
	f, _, orig := recordDoesNotFit(t)
	f.worker.waitLimit = 2 * time.Second
	f.submit("D1", "a.txt", "x", "xy")
	f.run()
	p := f.settle("D1")
	if p.State != store.StateFailed || !strings.Contains(p.Error, "no space left on device") || !strings.Contains(p.Error, "gave up after waiting") {
		t.Errorf("D1 after its wait limit = %s %q, want failed naming the cause and the wait", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != orig {
		t.Errorf("a.txt after D1 failed is %d bytes, want its content before the patch (%d bytes)", len(got), len(orig))
	}
}

// TestRevertNotRecordedIsUndone: a revert whose record does not fit (the
// state dir's disk is full) puts the files back as the patch left them:
// the patch stays applied and its files match, and the revert succeeds
// once there is room.
func TestRevertNotRecordedIsUndone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs for the store")
	}
	f := newFixture(t)
	f.stop()
	f.store.Close()
	queue := filepath.Join(f.dir, "queue")
	if err := syscall.Mount("tmpfs", queue, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("mount tmpfs on %s: %v", queue, err)
	}
	t.Cleanup(func() { syscall.Unmount(queue, syscall.MNT_DETACH) })
	f.open()
	// The revert's record carries the diff: larger than the room a full
	// disk may still have in the journal's last page.
	before, after := strings.Repeat("one\n", 2000), strings.Repeat("uno\n", 2000)
	f.write("a.txt", before, 0o644)
	f.submit("R1", "a.txt", "one", "uno")
	f.run()
	if p := f.settle("R1"); p.State != store.StateApplied {
		t.Fatalf("R1 = %s %s, want applied", p.State, p.Error)
	}
	filler := filepath.Join(queue, "filler")
	fh, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fh.Write(make([]byte, 512)); err != nil {
			break
		}
	}
	fh.Close()
	_, err = f.worker.Revert(context.Background(), "R1")
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "nothing was reverted") {
		t.Errorf("Revert on a full state dir = %v, want ErrUnavailable naming the cause and saying nothing was reverted", err)
	}
	if got := f.read("a.txt"); got != after {
		t.Errorf("a.txt after a revert that could not be recorded is %d bytes starting %q, want the patch's content", len(got), got[:min(len(got), 8)])
	}
	if p, _ := f.store.Get("R1"); p.State != store.StateApplied {
		t.Errorf("R1 = %s after a revert that could not be recorded, want applied", p.State)
	}
	os.Remove(filler)
	if p, err := f.worker.Revert(context.Background(), "R1"); err != nil || p.State != store.StateReverted || f.read("a.txt") != before {
		t.Errorf("Revert once there is room = %s, %v; want reverted and a.txt restored", p.State, err)
	}
}
