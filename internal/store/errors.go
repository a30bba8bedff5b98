package store

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/patchd/patchd/internal/fsutil"
)

var (
	// ErrConflict means a patch id was submitted again with a different body.
	ErrConflict error = &sentinel{"id already used by a different patch", CodeIDConflict}
	// ErrNotFound means no patch (or blob) has the given id (or name).
	ErrNotFound error = &sentinel{"not found", CodeNotFound}
	// ErrUnavailable means the disk refused a write (full, read-only, I/O
	// error). Nothing was recorded; retrying later may succeed.
	ErrUnavailable error = &sentinel{"store unavailable", CodeUnavailable}
	// ErrClosed means the store was closed.
	ErrClosed error = &sentinel{"store closed", CodeClosed}
	// ErrInvalidTransition means an Update asked for a state change the
	// patch life cycle does not allow.
	ErrInvalidTransition = errors.New("invalid state transition")
)

// isUnavailable reports whether err is a disk condition that may pass (or
// that an operator can fix) rather than a bug.
func isUnavailable(err error) bool { return fsutil.Transient(err) }

// ioFailure wraps a failed file operation with a short name instead of the
// absolute path, because these messages reach HTTP clients. Disk conditions
// wrap ErrUnavailable as well as the errno.
func ioFailure(op, name string, err error) error {
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	if isUnavailable(cause) {
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, name, cause)
	}
	return fmt.Errorf("%s %s: %w", op, name, cause)
}
