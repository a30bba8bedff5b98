package patch

import "fmt"

// SyntaxError reports a webhook body that is not a single JSON object. The
// offset lets a sender find the fault in a body it generated.
type SyntaxError struct {
	// Offset counts the body's bytes read when the fault was found,
	// including the offending byte (encoding/json's convention).
	Offset int64
	Msg    string // what is wrong there
	Err    error  // the decoder's error, when there is one
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap gives access to the *json.SyntaxError behind e, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// FieldError reports a missing or invalid field of a patch block. Msg is the
// complete message: senders written for the Flask service that patchd
// replaces match texts such as "Missing required field: role" verbatim.
type FieldError struct {
	Field string // dotted name of the field, such as "patch.pattern"
	Msg   string // the message, returned as is by Error
}

func (e *FieldError) Error() string { return e.Msg }

func missing(field string) *FieldError {
	return &FieldError{Field: field, Msg: "Missing required field: " + field}
}

func invalid(field, why string) *FieldError {
	return &FieldError{Field: field, Msg: "Invalid field: " + field + ": " + why}
}

// NotFoundError reports a pattern that matched nothing in the target file.
// It is an error, not a no-op, because an agent that patched a stale copy of
// the file must learn that its edit did not land.
type NotFoundError struct {
	File    string // the target file, as named in the block
	Pattern string
}

func (e *NotFoundError) Error() string { return "pattern not found in " + e.File }
