package workspace

import (
	"errors"
	"fmt"
)

// Codes say, for a program, why a path was refused or a file could not be
// read or written: every error of this package that a patch's sender can
// see has (or wraps) one, given by its Code method. They are stable; the
// README's "Error codes" table lists them.
const (
	CodePathInvalid    = "path_invalid"           // not a usable relative path (empty, absolute, a backslash, a link loop)
	CodePathOutside    = "path_outside_workspace" // leads outside the workspace (.., a symbolic link)
	CodePathProtected  = "path_protected"         // .git, or patchd's own files under any name
	CodePathNotRegular = "path_not_regular"       // a directory, symbolic link or special file, or under a file
	CodeFileTooLarge   = "file_too_large"         // larger than the caller's limit (*TooLargeError)
	CodeFileChanging   = "files_changed"          // the file kept changing while it was read
	CodeIOFailed       = "io_failed"              // the file system refused a read or write (permission, I/O error, disk full)
)

// Code returns why the path was refused: one of the Code constants.
func (e *PathError) Code() string {
	if e.code == "" {
		return CodePathInvalid
	}
	return e.code
}

// Code returns CodeFileTooLarge.
func (e *TooLargeError) Code() string { return CodeFileTooLarge }

// ioError is a failed file operation on a workspace file: its message and
// what it wraps, with CodeIOFailed.
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// Code returns the code of what it wraps, if that has one, else
// CodeIOFailed.
func (e *ioError) Code() string {
	var c interface{ Code() string }
	if errors.As(e.err, &c) {
		return c.Code()
	}
	return CodeIOFailed
}

// ioErrorf is fmt.Errorf for a failed file operation.
func ioErrorf(format string, args ...any) error {
	return &ioError{fmt.Errorf(format, args...)}
}
