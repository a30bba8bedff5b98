package patchsvc

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// coded is an error of a lower package that names its code and field.
type coded struct{}

func (coded) Error() string { return "refused" }
func (coded) Code() string  { return "its_own_code" }
func (coded) Field() string { return "its.field" }

// TestErrorOf: an error's own Code and Field come first; then the table
// of the typed errors and sentinels below; anything else is internal.
func TestErrorOf(t *testing.T) {
	tests := []struct {
		err         error
		kind        api.Kind
		code, field string
	}{
		{fmt.Errorf("wrapped: %w", coded{}), api.KindInternal, "its_own_code", "its.field"},
		{&patch.SyntaxError{Msg: "x"}, api.KindInvalid, api.CodeMalformedJSON, ""},
		{&patch.FieldError{Name: "role", Msg: "Missing required field: role", Kind: patch.CodeFieldMissing}, api.KindInvalid, api.CodeFieldMissing, "role"},
		{&patch.FieldError{Name: "id", Msg: "Invalid field: id: too long"}, api.KindInvalid, api.CodeFieldInvalid, "id"},
		{&workspace.PathError{Path: "../x", Reason: "escapes the workspace"}, api.KindInvalid, api.CodePathOutside, ""},
		{&workspace.PathError{Path: "a", Reason: `passes through symbolic link "a", which leads outside the workspace`}, api.KindInvalid, api.CodePathOutside, ""},
		{&workspace.PathError{Path: "l", Reason: "is a symbolic link"}, api.KindInvalid, api.CodePathSymlink, ""},
		{&workspace.PathError{Path: "", Reason: "is empty"}, api.KindInvalid, api.CodePathInvalid, ""},
		{&patch.MatchError{File: "a", What: "search text"}, api.KindUnprocessable, api.CodeMatchNotFound, ""},
		{&patch.MatchError{File: "a", What: "search text", Count: 2}, api.KindUnprocessable, api.CodeMatchAmbiguous, ""},
		{&patch.NotFoundError{File: "a"}, api.KindUnprocessable, api.CodeMatchNotFound, ""},
		{&patch.LimitError{Limit: patch.LimitFile}, api.KindUnprocessable, api.CodeFileTooLarge, ""},
		{&patch.LimitError{Limit: patch.LimitPatch}, api.KindUnprocessable, api.CodePatchTooLarge, ""},
		{fmt.Errorf("x: %w", store.ErrConflict), api.KindConflict, api.CodeIDConflict, "id"},
		{fmt.Errorf("x: %w", store.ErrNotFound), api.KindNotFound, api.CodePatchNotFound, "id"},
		{fmt.Errorf("x: %w", store.ErrNotQueued), api.KindConflict, api.CodeNotQueued, ""},
		{fmt.Errorf("x: %w", store.ErrUnavailable), api.KindUnavailable, api.CodeStoreUnavailable, ""},
		{store.ErrClosed, api.KindUnavailable, api.CodeStoreClosed, ""},
		{fmt.Errorf("x: %w", worker.ErrBusy), api.KindUnavailable, api.CodeWorkerBusy, ""},
		{worker.ErrNotApplied, api.KindConflict, api.CodeNotApplied, ""},
		{worker.ErrChanged, api.KindConflict, api.CodeFileChanged, ""},
		{store.ErrEventsLost, api.KindGone, api.CodeEventsLost, ""},
		{store.ErrSlowSubscriber, api.KindUnavailable, api.CodeSubscriberSlow, ""},
		{errors.New("something else"), api.KindInternal, api.CodeInternal, ""},
	}
	for _, tt := range tests {
		e := ErrorOf(tt.err)
		if e.Kind != tt.kind || e.Code != tt.code || e.Field != tt.field || e.Message != tt.err.Error() || !errors.Is(e, tt.err) {
			t.Errorf("ErrorOf(%v) = %+v, want {%s %s %q} with its message and cause", tt.err, e, tt.kind, tt.code, tt.field)
		}
	}
	if ErrorOf(nil) != nil {
		t.Error("ErrorOf(nil) != nil")
	}
	given := &api.Error{Kind: api.KindConflict, Code: "x", Message: "m"}
	if ErrorOf(fmt.Errorf("w: %w", given)) != given {
		t.Error("ErrorOf of a wrapped *api.Error is not that error")
	}
	// api.ErrorOf, without the table: the error's own code, else internal.
	if e := api.ErrorOf(coded{}); e.Kind != api.KindInternal || e.Code != "its_own_code" || e.Field != "its.field" {
		t.Errorf("api.ErrorOf(coded) = %+v", e)
	}
}

// TestNoMachinePaths: a message a lower layer wrote with the workspace's
// or the state dir's absolute path shows their names instead.
func TestNoMachinePaths(t *testing.T) {
	f := newFixture(t)
	err := fmt.Errorf("git add %s/src/app.py: exit 1 (index %s/.patchd/x)", f.ws, f.ws)
	e := f.svc.refuse(refusal{}, err)
	if want := "git add <workspace>/src/app.py: exit 1 (index <state dir>/x)"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
}

// TestWireConstants: the states and page size api declares are the
// store's.
func TestWireConstants(t *testing.T) {
	var states []string
	for _, s := range store.States() {
		states = append(states, string(s))
	}
	if !slices.Equal(api.States(), states) {
		t.Errorf("api.States() = %q, store's = %q", api.States(), states)
	}
	if api.MaxWait != patch.MaxWait {
		t.Errorf("api.MaxWait = %v, patch's = %v", api.MaxWait, patch.MaxWait)
	}
	if api.DefaultListLimit != store.DefaultListLimit {
		t.Errorf("api.DefaultListLimit = %d, store's = %d", api.DefaultListLimit, store.DefaultListLimit)
	}
}
