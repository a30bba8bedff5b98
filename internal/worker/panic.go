package worker

import (
	"fmt"
	"runtime/debug"

	"github.com/patchd/patchd/internal/patch"
)

// internalError is the outcome of a patch whose parsing or planning
// panicked: a bug of patchd's, which fails that patch only. Nothing was
// written then; a panic once files are written is not recovered, so that
// the recovery at the next start settles the patch by its files.
type internalError struct{ value any }

func (e *internalError) Error() string {
	return fmt.Sprintf("patchd hit an internal error while planning this patch: %v; see log", e.value)
}

// Code returns CodeInternal.
func (e *internalError) Code() string { return CodeInternal }

// panicked logs the panic v of the patch id's parsing or planning, with
// its stack, and returns the *internalError the patch fails with. Call it
// from the deferred function that recovered v, so that the stack still
// holds the place of the panic.
func (w *Worker) panicked(id string, v any) error {
	w.log.Error("internal error (panic) while planning a patch; the patch fails, the daemon goes on",
		"id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return &internalError{v}
}

// parseRecovered is w.parse, with a panic turned into an *internalError.
func (w *Worker) parseRecovered(id string, body []byte, o patch.ParseOptions) (blk *patch.Block, err error) {
	defer func() {
		if v := recover(); v != nil {
			blk, err = nil, w.panicked(id, v)
		}
	}()
	return w.parse(body, o)
}
