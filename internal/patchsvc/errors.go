package patchsvc

import (
	"errors"
	"strings"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// ErrorOf is patchd's one mapping of a Go error to an *api.Error: the
// error's code and field where it names them itself (a Code() or Field()
// string method, see api.CodeOf), else the ones known here for the store's,
// the worker's, patch's and workspace's typed errors and sentinels; its
// Kind from the same table; its Message its text. An error that is none of
// these is Kind internal, code internal. An *api.Error is returned as is.
func ErrorOf(err error) *api.Error {
	return refusal{}.of(err)
}

// refusal says how one use case refuses: what it knows better than the
// error itself. Its zero value adds nothing.
type refusal struct {
	// kind overrides the error's own Kind: every refusal of a block at
	// intake is invalid (400), every reason a preview would fail is
	// unprocessable (422), whatever the cause.
	kind api.Kind
	// code is the code when neither the error nor the table names one
	// (default internal).
	code string
	// field is the request field at fault when the use case knows it (a
	// path refused names target_file or path, not itself).
	field string
	// msg is the message, when not the error's text.
	msg string
}

func (r refusal) of(err error) *api.Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*api.Error](err); ok {
		return e
	}
	kind, code, field := classify(err)
	if c := api.CodeOf(err); c != "" {
		code = c
	}
	if f := api.FieldOf(err); f != "" {
		field = f
	}
	e := &api.Error{Kind: kind, Code: code, Field: field, Message: r.msg, Err: err}
	if r.kind != "" {
		e.Kind = r.kind
	}
	if e.Code == "" {
		e.Code = r.code
	}
	if e.Code == "" {
		e.Code = api.CodeInternal
	}
	if r.field != "" {
		e.Field = r.field
	}
	if e.Message == "" {
		e.Message = err.Error()
	}
	return e
}

// classify is the table of the errors patchd knows: their Kind, code and
// field. An unknown error is internal with no code.
func classify(err error) (api.Kind, string, string) {
	if _, ok := errors.AsType[*patch.SyntaxError](err); ok {
		return api.KindInvalid, api.CodeMalformedJSON, ""
	}
	if e, ok := errors.AsType[*patch.FieldError](err); ok {
		if strings.HasPrefix(e.Msg, "Missing required field") {
			return api.KindInvalid, api.CodeFieldMissing, e.Name
		}
		return api.KindInvalid, api.CodeFieldInvalid, e.Name
	}
	if e, ok := errors.AsType[*workspace.PathError](err); ok {
		return api.KindInvalid, pathCode(e.Reason), ""
	}
	if e, ok := errors.AsType[*patch.MatchError](err); ok {
		if e.Count > 0 {
			return api.KindUnprocessable, api.CodeMatchAmbiguous, ""
		}
		return api.KindUnprocessable, api.CodeMatchNotFound, ""
	}
	if _, ok := errors.AsType[*patch.NotFoundError](err); ok {
		return api.KindUnprocessable, api.CodeMatchNotFound, ""
	}
	if e, ok := errors.AsType[*patch.LimitError](err); ok {
		if e.Limit == patch.LimitPatch {
			return api.KindUnprocessable, api.CodePatchTooLarge, ""
		}
		return api.KindUnprocessable, api.CodeFileTooLarge, ""
	}
	if _, ok := errors.AsType[*workspace.TooLargeError](err); ok {
		return api.KindUnprocessable, api.CodeFileTooLarge, ""
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return api.KindConflict, api.CodeIDConflict, "id"
	case errors.Is(err, store.ErrNotFound):
		return api.KindNotFound, api.CodePatchNotFound, "id"
	case errors.Is(err, store.ErrNotQueued):
		return api.KindConflict, api.CodeNotQueued, ""
	case errors.Is(err, worker.ErrNotApplied):
		return api.KindConflict, api.CodeNotApplied, ""
	case errors.Is(err, worker.ErrChanged):
		return api.KindConflict, api.CodeFileChanged, ""
	case errors.Is(err, worker.ErrBusy):
		return api.KindUnavailable, api.CodeWorkerBusy, ""
	case errors.Is(err, store.ErrUnavailable):
		return api.KindUnavailable, api.CodeStoreUnavailable, ""
	case errors.Is(err, store.ErrClosed):
		return api.KindUnavailable, api.CodeStoreClosed, ""
	case errors.Is(err, store.ErrExpired):
		return api.KindGone, api.CodeExpired, "id"
	case errors.Is(err, store.ErrEventsLost):
		return api.KindGone, api.CodeEventsLost, ""
	case errors.Is(err, store.ErrSlowSubscriber):
		return api.KindUnavailable, api.CodeSubscriberSlow, ""
	}
	return api.KindInternal, "", ""
}

// pathCode is the code of a path workspace refused, told by its reason
// (workspace's fixed texts).
func pathCode(reason string) string {
	switch {
	case strings.HasPrefix(reason, "escapes the workspace"), strings.HasPrefix(reason, "is absolute"),
		strings.HasPrefix(reason, "is a Windows absolute"), strings.Contains(reason, "leads outside the workspace"):
		return api.CodePathOutside
	case strings.HasPrefix(reason, "refers to git internals"):
		return api.CodePathGit
	case strings.HasPrefix(reason, "refers to the workspace root"):
		return api.CodePathInvalid
	case strings.HasPrefix(reason, "refers to "):
		// The state dir, the config file, the summaries, or another
		// path the daemon protects.
		return api.CodePathProtected
	case strings.Contains(reason, "symbolic link"):
		return api.CodePathSymlink
	}
	return api.CodePathInvalid
}
