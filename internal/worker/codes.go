package worker

import (
	"cmp"
	"errors"
	"fmt"
)

// Codes say, for a program, why the worker refused or failed a patch, or a
// revert: its errors have (or wrap) one, given by a Code method, and a
// failed patch keeps the code of its error (store.Patch.Code). A patch
// failed for a reason of a lower package (a text not found, a refused
// path) keeps that package's code. They are stable; the README's "Error
// codes" table lists them.
const (
	CodeNotApplied    = "not_applied"    // ErrNotApplied: only an applied patch can be reverted
	CodeFileChanged   = "file_changed"   // ErrChanged, or a file changed while the patch was applied
	CodeWorkerBusy    = "worker_busy"    // ErrBusy: the revert was not started
	CodePlanTimeout   = "plan_timeout"   // planning took longer than plan-timeout
	CodeNoChange      = "no_change"      // every edit leaves its file as it is
	CodeCheckFailed   = "check_failed"   // a check failed (or could not run); the patch was undone
	CodeGitFailed     = "git_failed"     // a git command failed, or no repository holds the workspace
	CodeGitRefused    = "git_refused"    // --git refuses: uncommitted changes, git config a patch could write
	CodePathProtected = "path_protected" // --git: a file git reads (.gitattributes, HEAD at the top)
	CodeFieldInvalid  = "field_invalid"  // --git: metadata.author git would refuse
	CodeCrashed       = "crashed"        // the patch's planning crashed the daemon twice
	CodeInternal      = "internal"       // a bug in patchd (a panic), or a cause no code names
)

// sentinel is an error value of this package with a code, compared by
// identity (errors.Is) as errors.New's are.
type sentinel struct{ msg, code string }

func (e *sentinel) Error() string { return e.msg }

// Code returns the error's code.
func (e *sentinel) Code() string { return e.code }

// codedError gives an error a code; its message and what it wraps stay.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// Code returns the error's code.
func (e *codedError) Code() string { return e.code }

// fieldError is a codedError that names the request field at fault.
type fieldError struct {
	codedError
	field string
}

// Field returns the dotted name of the request field at fault.
func (e *fieldError) Field() string { return e.field }

// errorf is fmt.Errorf with a code.
func errorf(code, format string, args ...any) error {
	return &codedError{code: code, err: fmt.Errorf(format, args...)}
}

// withCode gives err the code, unless it has one already.
func withCode(code string, err error) error {
	if err == nil || codeOf(err) != "" {
		return err
	}
	return &codedError{code: code, err: err}
}

// codeOf is the code of the first error in err's chain that has one, ""
// if none has.
func codeOf(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

// failCode is the code a patch failed (or waiting) with cause keeps: its
// own, or CodeInternal when nothing names one.
func failCode(cause error) string {
	return cmp.Or(codeOf(cause), CodeInternal)
}
