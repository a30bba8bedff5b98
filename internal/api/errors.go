package api

import (
	"errors"
	"fmt"
)

// Kind is the class of a refusal: what a door turns into its status (an
// HTTP status, an exit code). Codes are finer; each belongs to one Kind.
type Kind string

// The kinds of refusal, with the HTTP status the server answers each with.
const (
	KindInvalid       Kind = "invalid"       // 400: the request is malformed or names something it may not
	KindUnauthorized  Kind = "unauthorized"  // 401: no valid credentials
	KindForbidden     Kind = "forbidden"     // 403: a Host or Origin from another site
	KindNotFound      Kind = "not_found"     // 404: no such patch
	KindConflict      Kind = "conflict"      // 409: the patch's state or id does not allow it
	KindGone          Kind = "gone"          // 410: events no longer kept, a patch retention removed
	KindTooLarge      Kind = "too_large"     // 413: the body is over its limit
	KindUnsupported   Kind = "unsupported"   // 415: not a JSON Content-Type
	KindUnprocessable Kind = "unprocessable" // 422: a well-formed patch that would fail
	KindRateLimited   Kind = "rate_limited"  // 429: too many requests
	KindUnavailable   Kind = "unavailable"   // 503: busy or the disk refuses; retry later
	KindInternal      Kind = "internal"      // 500: patchd's fault
)

// HTTPStatus is the HTTP status of a refusal of this kind, the one
// mapping every HTTP door (server, dashboard) answers with, as
// cmd/patchd's daemonExit picks exit codes. The numbers are net/http's
// Status constants: api imports no transport.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return 400
	case KindUnauthorized:
		return 401
	case KindForbidden:
		return 403
	case KindNotFound:
		return 404
	case KindConflict:
		return 409
	case KindGone:
		return 410
	case KindTooLarge:
		return 413
	case KindUnsupported:
		return 415
	case KindUnprocessable:
		return 422
	case KindRateLimited:
		return 429
	case KindUnavailable:
		return 503
	}
	return 500
}

// Codes: machine-readable reasons, snake_case, stable across versions; an
// agent branches on them. A lower package's error may carry its own code
// (a Code() string method); these are the ones patchd's mapping produces.
const (
	// Requests (the doors).
	CodeUnauthorized       = "unauthorized"
	CodeForbiddenHost      = "forbidden_host"
	CodeForbiddenOrigin    = "forbidden_origin"
	CodeContentTypeMissing = "content_type_missing"
	CodeContentType        = "content_type_unsupported"
	CodeBodyTooLarge       = "body_too_large"
	CodeBodyUnreadable     = "body_unreadable"
	CodeRateLimited        = "rate_limited"
	// Every connection the server may hold is busy (--max-conns,
	// --max-conns-per-client); answered before a request is read.
	CodeTooManyConnections = "too_many_connections"

	// Patch blocks (intake).
	CodeMalformedJSON = "json_malformed"
	CodeFieldMissing  = "field_missing"
	CodeFieldInvalid  = "field_invalid" // also a query parameter (limit, state, wait)

	// Paths, at intake and when planning.
	CodePathOutside   = "path_outside_workspace" // absolute, or leads out with ..
	CodePathGit       = "path_git_internals"
	CodePathProtected = "path_protected" // patchd's own files
	CodePathSymlink   = "path_symlink"
	CodePathInvalid   = "path_invalid" // any other refused path

	// Patches that would fail (preview) or did.
	CodeMatchNotFound  = "match_not_found"
	CodeMatchAmbiguous = "match_ambiguous"
	CodeFileTooLarge   = "file_too_large"
	CodePatchTooLarge  = "patch_too_large"
	CodePatchRefused   = "patch_refused" // any other reason a patch would fail

	// Patches in the store.
	CodeIDConflict       = "id_conflict"
	CodePatchNotFound    = "patch_not_found"
	CodeNotQueued        = "not_queued"
	CodeNotApplied       = "not_applied"
	CodeFileChanged      = "file_changed"
	CodeWorkerBusy       = "worker_busy"
	CodeStoreUnavailable = "store_unavailable"
	CodeStoreClosed      = "store_closed"
	// The patch existed, but retention (--retain, patchd patches prune)
	// removed it; the message says when. Kind gone.
	CodeExpired = "expired"

	// Events.
	CodeEventsLost     = "events_lost"
	CodeSubscriberSlow = "subscriber_slow"

	CodeInternal = "internal"
)

// Error is a refusal: what every door shows. Message is the human text
// (for HTTP clients written for the seed service, result.error verbatim);
// Code and Field are for programs.
type Error struct {
	Kind    Kind
	Code    string
	Field   string // the request field at fault, such as "target_file" or "patch.search"; "" for none
	Message string
	// Err is the cause, for errors.Is and errors.As; never shown.
	Err error
}

// Error returns Message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error whose Message is formatted; a %w verb makes its
// operand the cause.
func Errorf(kind Kind, code, field, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Code: code, Field: field, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorOf returns the *Error in err's chain; for any other error one of
// Kind internal, with the code and field err carries (CodeOf, FieldOf) or
// CodeInternal, and err's text. nil stays nil.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	code := CodeOf(err)
	if code == "" {
		code = CodeInternal
	}
	return &Error{Kind: KindInternal, Code: code, Field: FieldOf(err), Message: err.Error(), Err: err}
}

// coder and fielder are the methods by which an error of a lower package
// (patch, workspace, store, worker) names its code and field without
// importing this package.
type (
	coder interface {
		error
		Code() string
	}
	fielder interface {
		error
		Field() string
	}
)

// CodeOf returns the code the first error in err's chain with a Code()
// string method gives, or "".
func CodeOf(err error) string {
	if c, ok := errors.AsType[coder](err); ok {
		return c.Code()
	}
	return ""
}

// FieldOf returns the field the first error in err's chain with a
// Field() string method gives, or "".
func FieldOf(err error) string {
	if f, ok := errors.AsType[fielder](err); ok {
		return f.Field()
	}
	return ""
}
