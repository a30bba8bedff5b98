package worker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
