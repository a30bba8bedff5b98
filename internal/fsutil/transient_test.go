package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// TestTransient: each shortage is transient however it is wrapped; faults
// of the data or of the path are not.
func TestTransient(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EFBIG, syscall.EMFILE, syscall.ENFILE} {
		err := fmt.Errorf("write x: %w", &fs.PathError{Op: "write", Path: "x", Err: e})
		if !Transient(err) {
			t.Errorf("Transient(%v) = false, want true", err)
		}
	}
	for _, err := range []error{nil, errors.New("no"), syscall.ENOENT, syscall.EACCES, syscall.EISDIR, syscall.ELOOP, fs.ErrNotExist} {
		if Transient(err) {
			t.Errorf("Transient(%v) = true, want false", err)
		}
	}
}
