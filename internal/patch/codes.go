package patch

import (
	"errors"
	"fmt"
)

// Codes say, for a program, why a block was refused: every error this
// package returns has (or wraps) one, given by its Code method, next to
// the message for a person. They are stable: a code is never renamed,
// and the README's "Errors" table lists each with its meaning. Callers
// read them through a Code() string method, not through these types, so
// that a package above can map the codes of every layer at once.
const (
	CodeJSONMalformed  = "json_malformed"   // the body is not one JSON object (*SyntaxError)
	CodeFieldMissing   = "field_missing"    // a required field is absent, null or ""
	CodeFieldInvalid   = "field_invalid"    // a field has the wrong type or an unusable value
	CodeTooManyEdits   = "too_many_edits"   // more edits (or aider blocks) than one block may hold
	CodeMatchNotFound  = "match_not_found"  // a pattern, search text, hunk or anchor is not in the file
	CodeMatchAmbiguous = "match_ambiguous"  // a search text, hunk or anchor matches several places
	CodeHunkFailed     = "hunk_failed"      // a hunk cannot be placed or applied as the diff says
	CodeFileNotFound   = "file_not_found"   // the edit changes or deletes a file that does not exist
	CodeFileExists     = "file_exists"      // the edit creates (or moves onto) a file that exists
	CodeFileTooLarge   = "file_too_large"   // a file read or written passes the file limit
	CodePatchTooLarge  = "patch_too_large"  // the patch would hold more file content than it may
	CodePathNotRegular = "path_not_regular" // the edit deletes a directory (it deletes files one by one)
)

// codedError gives an error its code, keeping its message and what it
// wraps (errors.Is and errors.As see through it).
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// Code returns the error's code.
func (e *codedError) Code() string { return e.code }

// withCode gives err the code, unless it has one already.
func withCode(code string, err error) error {
	var c interface{ Code() string }
	if err == nil || errors.As(err, &c) {
		return err
	}
	return &codedError{code: code, err: err}
}

// errorf is fmt.Errorf with a code.
func errorf(code, format string, args ...any) error {
	return &codedError{code: code, err: fmt.Errorf(format, args...)}
}
