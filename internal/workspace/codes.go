package workspace

import (
	"errors"
	"fmt"
	"strings"
)

// Codes say, for a program, why a path was refused or a file could not be
// read or written: every error of this package that a patch's sender can
// see has (or wraps) one, given by its Code method. They are stable; the
// README's "Error codes" table lists them.
const (
	CodePathInvalid    = "path_invalid"           // not a usable relative path (empty, a backslash, the root, a trailing slash)
	CodePathOutside    = "path_outside_workspace" // absolute, or leads outside the workspace (.., a symbolic link)
	CodePathGit        = "path_git_internals"     // a .git component, in any letter case
	CodePathProtected  = "path_protected"         // patchd's own files under any name
	CodePathSymlink    = "path_symlink"           // a symbolic link, or a loop of them
	CodePathNotRegular = "path_not_regular"       // a directory or special file, or a path under a file
	CodeFileTooLarge   = "file_too_large"         // larger than the caller's limit (*TooLargeError)
	CodeFileChanged    = "file_changed"           // the file kept changing while it was read
	CodeIOFailed       = "io_failed"              // the file system refused a read or write (permission, I/O error, disk full)
	CodeFileNotFound   = "file_not_found"         // nothing there (Open, Walk)
	CodeNotDirectory   = "path_not_directory"     // a file where a directory is wanted (Walk)
	CodeDirTooLarge    = "dir_too_large"          // a directory of more than MaxDirEntries entries (Walk)
)

// Code returns why the path was refused: one of the Code constants. A
// PathError made outside this package is told by its Reason.
func (e *PathError) Code() string {
	if e.code != "" {
		return e.code
	}
	r := e.Reason
	switch {
	case strings.HasPrefix(r, reasonEscapes), strings.HasPrefix(r, reasonAbsolute),
		strings.HasPrefix(r, reasonWindowsAbs), strings.Contains(r, "leads outside the workspace"):
		return CodePathOutside
	case strings.HasPrefix(r, reasonGit):
		return CodePathGit
	case strings.HasPrefix(r, "refers to ") && !strings.HasPrefix(r, reasonRoot):
		return CodePathProtected
	case strings.HasPrefix(r, reasonSymlink), strings.HasPrefix(r, reasonLinkLoop):
		return CodePathSymlink
	case strings.HasPrefix(r, reasonDir), strings.HasPrefix(r, reasonNotRegular), strings.HasPrefix(r, "has a parent that is not a directory"):
		return CodePathNotRegular
	}
	return CodePathInvalid
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
