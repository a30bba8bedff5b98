//go:build unix

package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSpecialFile checks a FIFO is refused before it is opened: opening one
// for reading would block the worker until some writer showed up.
func TestSpecialFile(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, syscall.Mkfifo(filepath.Join(fx.wsDir, "pipe"), 0o644))
	ops := map[string]func() error{
		"ReadFile":  func() error { _, _, _, err := fx.ws.ReadFile("pipe"); return err },
		"WriteFile": func() error { return fx.ws.WriteFile("pipe", []byte("x"), 0) },
		"Remove":    func() error { return fx.ws.Remove("pipe") },
	}
	for name, op := range ops {
		var pe *PathError
		if err := op(); !errors.As(err, &pe) || pe.Reason != reasonNotRegular {
			t.Errorf("%s(%q) = %v, want reason %q", name, "pipe", err, reasonNotRegular)
		}
	}
}

// TestWriteFileKeepsOwner checks a daemon running as root does not take
// ownership of the files it patches.
func TestWriteFileKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	fx := newFixture(t)
	full := filepath.Join(fx.wsDir, "src", "app.py")
	const uid, gid = 12345, 23456
	mustNoErr(t, os.Chown(full, uid, gid))
	mustNoErr(t, fx.ws.WriteFile("src/app.py", []byte("owned\n"), 0))
	fi, err := os.Lstat(full)
	mustNoErr(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("after WriteFile, owner = %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
