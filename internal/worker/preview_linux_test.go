package worker

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// TestGitPreviewTakesNoIndexLock: a preview under --git runs git's
// read-only commands without git's optional locks, so it never creates
// .git/index.lock: the worker's commit, which runs meanwhile (Preview
// does not wait for the worker), would fail on finding it ("Unable to
// create index.lock: File exists"). The kernel reports every file
// created in .git (inotify), so this is seen, not guessed from timing.
func TestGitPreviewTakesNoIndexLock(t *testing.T) {
	f := gitFixture(t, "a.txt", "one\n")
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, filepath.Join(f.ws, ".git"), syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first finds the repository, the second reuses it
		if diff, _, err := f.worker.Preview(context.Background(), previewBlock(t, "V", "a.txt", "one", "uno")); err != nil {
			t.Fatalf("Preview = %q, %v", diff, err)
		}
	}
	for _, name := range inotifyNames(t, fd) {
		if name == "index.lock" || name == "index" {
			t.Errorf("a preview made .git/%s: it took the lock of the index the worker's commit needs", name)
		}
	}
}

// inotifyNames reads the names of the events queued on fd.
func inotifyNames(t *testing.T, fd int) []string {
	t.Helper()
	var names []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			names = append(names, string(bytes.TrimRight(name, "\x00")))
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
