package fsutil

import (
	"os"
	"syscall"
)

// Datasync is fdatasync(2): the file's data made durable without the
// metadata a read does not need (timestamps), which is enough for bytes
// written over space already allocated inside the file's size.
func Datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
