package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of the given size on a temporary directory, so
// that the disk can really fill up. It needs root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a small tmpfs to fill needs root (run the tests as root on Linux)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs on %s: %v", dir, err)
	}
	// Registered after TempDir's cleanup, so it runs before the removal.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, "256k")
	dir := filepath.Join(mnt, "queue")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 96<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{EventsPath: filepath.Join(mnt, "events.jsonl")}
	s := openTest(t, dir, opts)
	ctx := context.Background()
	body := func(id string) []byte { return []byte(strings.Repeat(id+" ", 4096/(len(id)+1))) }

	var acked []string
	var err error
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("f%d", i)
		if _, _, err = s.Submit(ctx, Patch{ID: id}, body(id)); err != nil {
			break
		}
		acked = append(acked, id)
	}
	if err == nil {
		t.Fatalf("1000 submissions of 4 KiB fit in a 256 KiB file system")
	}
	t.Logf("%d submissions fit; then: %v", len(acked), err)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) ||
		!strings.Contains(err.Error(), "store unavailable: write queue/seg/00000001.jnl: no space left on device") {
		t.Fatalf("Submit on a full disk = %v, want ErrUnavailable naming no space left on device", err)
	}
	if _, _, err := s.Submit(ctx, Patch{ID: "again"}, body("again")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("second Submit on a full disk = %v, want ErrUnavailable", err)
	}
	if err := s.PutBlob(acked[0], "backup", make([]byte, 64<<10)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("PutBlob on a full disk = %v, want ErrUnavailable", err)
	}
	// Reads and updates of what is stored keep working while full, as far
	// as a record fits.
	if b, err := s.Body(acked[0]); err != nil || string(b) != string(body(acked[0])) {
		t.Errorf("Body(%s) on a full disk = %d bytes, %v", acked[0], len(b), err)
	}
	if err := s.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}

	check := func(s *Store, ids []string) {
		t.Helper()
		for _, id := range ids {
			b, err := s.Body(id)
			if err != nil || string(b) != string(body(id)) {
				t.Errorf("Body(%s) after reopen = %d bytes, %v; want the submitted body", id, len(b), err)
			}
		}
	}
	s = openTest(t, dir, opts)
	check(s, acked)
	if st := s.Stats(); st.Total != len(acked) {
		t.Errorf("after reopen %d patches, want %d", st.Total, len(acked))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"again", "more"} {
		if _, created, err := s.Submit(ctx, Patch{ID: id}, body(id)); err != nil || !created {
			t.Fatalf("Submit(%s) after freeing space = created %v, %v", id, created, err)
		}
		acked = append(acked, id)
	}
	if err := s.PutBlob(acked[0], "backup", make([]byte, 64<<10)); err != nil {
		t.Errorf("PutBlob after freeing space = %v", err)
	}
	s.Close()
	s = openTest(t, dir, opts)
	check(s, acked)
	checkJournalClean(t, dir, len(acked))
}

func TestReadOnlyFileSystem(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	dir := filepath.Join(mnt, "queue")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, "before", "b")
	s.Close()

	// A file system cannot be remounted read-only while the store holds
	// the journal open for writing, so this checks Open; writes failing
	// with EROFS are covered with an injected fault in TestWriteFailures.
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("skipping: remount read-only: %v", err)
	}
	s, err = Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open on a read-only file system succeeded")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("Open on a read-only file system = %v, want ErrUnavailable naming read-only file system", err)
	}
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}
	s = openTest(t, dir, Options{})
	if _, ok := s.Get("before"); !ok {
		t.Errorf("patch submitted before the remount is missing")
	}
	mustSubmit(t, s, "after", "a")
}

// TestNoReserveOnANearlyFullDisk: on a file system with less than the
// reserve and 2 MiB to spare, the journal writes no zeros ahead: its file
// ends where its records do, and the space stays for everything else.
func TestNoReserveOnANearlyFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "2m")
	dir := filepath.Join(mnt, "queue")
	s := openTest(t, dir, Options{})
	for i := range 5 {
		mustSubmit(t, s, fmt.Sprintf("n%d", i), strings.Repeat("x", 300))
	}
	path := activeSegment(t, dir)
	fi, _ := os.Stat(path)
	if end := recordsEnd(t, path); fi.Size() != end {
		t.Errorf("journal on a 2 MiB file system is %d bytes, its records end at %d: want no zeros ahead", fi.Size(), end)
	}
}
