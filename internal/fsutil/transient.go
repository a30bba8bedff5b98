package fsutil

import (
	"errors"
	"syscall"
)

// Transient reports whether err is, or wraps, a shortage of the system
// that may pass by itself or by an operator's hand, rather than a fault of
// the data or a bug: a full disk or quota (ENOSPC, EDQUOT), a file system
// remounted read-only (EROFS), a failing device (EIO), a file size limit
// such as RLIMIT_FSIZE (EFBIG), too many open files (EMFILE, ENFILE). The
// store answers a write that meets one "unavailable" (retry later), and
// the worker puts a patch that meets one back in the queue for a while:
// this is the one list both use.
func Transient(err error) bool {
	for _, e := range [...]syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, syscall.EFBIG, syscall.EMFILE, syscall.ENFILE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
