package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// Limits bound what one patch may cost the daemon; a patch that passes one
// fails, naming it. Zero fields are no limit.
type Limits struct {
	patch.Limits
	// PlanTimeout bounds reading a patch's files and computing its edits.
	PlanTimeout time.Duration
	// MaxEdits bounds the edits of a block (0: patch.MaxEdits), as the
	// webhook's; a patch accepted under a higher bound fails.
	MaxEdits int
	// PlanTimeoutSetting and MaxEditsSetting name the settings that raise
	// PlanTimeout and MaxEdits in refusals, as patch.Limits's FileSetting
	// and PatchSetting do theirs ("" names none); the daemon sets all four.
	PlanTimeoutSetting, MaxEditsSetting string
}

// errStopped is the outcome of a patch whose planning was cut short by a
// stop: nothing was recorded, the patch is still queued.
var errStopped = errors.New("stopped while planning the patch")

// errCrashed: the patch's planning was cut short by the daemon's death
// maxDeaths times already.
var errCrashed error = &sentinel{crashedError, CodeCrashed}

// planAttempt is planWithin for a patch of the queue, recorded as an
// attempt: planning is where a patch's content is worked on in memory,
// and where a patch could kill the daemon (out of memory, a bug); one that
// did so maxDeaths times is not planned again (errCrashed). Deaths at
// other moments (a kill -9 while a file is written) do not count: the
// recovery after a restart handles those, and they are not the patch's.
func (w *Worker) planAttempt(ctx context.Context, p store.Patch, blk *patch.Block) (*txn, error) {
	// An abandoned planning still running, or a preview's, is not this
	// patch's: take the turn first, then record the attempt.
	if err := w.planTurn(ctx); err != nil {
		return nil, err
	}
	if w.beginAttempt(p) {
		<-w.planSlot
		w.endAttempt()
		return nil, errCrashed
	}
	t, err := w.planInTurn(ctx, blk)
	w.endAttempt()
	return t, err
}

// planTurn waits until no planning runs (the worker's, a preview's, or
// one given up on that has not reached its next check yet) and takes the
// turn: w.planSlot holds a token until the planning started in it ends.
func (w *Worker) planTurn(ctx context.Context) error {
	select {
	case w.planSlot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errStopped, ctx.Err())
	}
}

// maxDeaths is how many times a patch may be found to have been cut short
// by the daemon's death before it fails instead of being tried again.
const maxDeaths = 2

// crashedError is the error of such a patch.
const crashedError = "crashed the daemon twice while applying; see log"

// planWithin plans blk within the limits, in a goroutine of its own, and
// gives up on it when the time budget is spent or ctx is done (a stop, a
// preview's request that ended): one search of the regexp package cannot
// be interrupted, so waiting for planning to notice could take as long as
// that search. The abandoned planning stops at its next check (between
// edits, hunks, runs of lines, matches); until then its memory stays
// within the limits, and the next planning waits for it, so that no more
// than one ever runs, the worker's and previews' alike (planTurn).
func (w *Worker) planWithin(ctx context.Context, blk *patch.Block) (*txn, error) {
	if err := w.planTurn(ctx); err != nil {
		return nil, err
	}
	return w.planInTurn(ctx, blk)
}

// planInTurn is planWithin once planTurn has given the turn; the turn
// ends with the planning goroutine.
func (w *Worker) planInTurn(ctx context.Context, blk *patch.Block) (*txn, error) {
	budget := w.opts.Limits.PlanTimeout
	pctx, cancel := context.WithCancel(ctx)
	if budget > 0 {
		pctx, cancel = context.WithTimeout(ctx, budget)
	}
	defer cancel()
	type result struct {
		t   *txn
		err error
	}
	res := make(chan result, 1)
	go func() {
		defer func() { <-w.planSlot }()
		// A panic here would end the daemon, and the patch would stay
		// queued for the next one to die of: it fails the patch instead.
		defer func() {
			if v := recover(); v != nil {
				res <- result{err: w.panicked(blk.ID, v)}
			}
		}()
		t, err := w.planFn(pctx, blk)
		res <- result{t, err}
	}()
	select {
	case r := <-res:
		if r.err == nil || pctx.Err() == nil {
			return r.t, r.err
		}
	case <-pctx.Done():
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", errStopped, ctx.Err())
	}
	err := errorf(CodePlanTimeout, "planning the patch took longer than %s, the most one patch may take", budget)
	if set := w.opts.Limits.PlanTimeoutSetting; set != "" {
		err = fmt.Errorf("%w (setting %s)", err, set)
	}
	return nil, err
}

// readLimited reads a file for planning, refusing one over the file limit
// by its size, as a *patch.LimitError.
func (w *Worker) readLimited(path string) ([]byte, fs.FileMode, bool, error) {
	lim := w.opts.Limits.MaxFileBytes
	data, mode, exists, err := w.opts.Workspace.ReadFileMax(path, lim)
	if err != nil {
		return nil, 0, false, limitOf(err, path, w.opts.Limits.Limits)
	}
	return data, mode, exists, nil
}

// limitOf turns the *workspace.TooLargeError of a read with the file limit
// of lim into a *patch.LimitError that names its setting; other errors are
// returned as they are.
func limitOf(err error, path string, lim patch.Limits) error {
	var tl *workspace.TooLargeError
	if errors.As(err, &tl) {
		return &patch.LimitError{Limit: patch.LimitFile, Max: lim.MaxFileBytes, File: path, Size: tl.Size, Setting: lim.FileSetting}
	}
	return err
}

// beginAttempt records that the worker starts planning p, and says
// whether p's planning has already been cut short by the daemon's death
// maxDeaths times: then it must not be tried again. A failure to record is logged; the patch is
// applied all the same.
func (w *Worker) beginAttempt(p store.Patch) (giveUp bool) {
	deaths, err := w.opts.Store.BeginAttempt(p.ID)
	if err != nil {
		w.log.Warn("could not record the start of a patch; a patch that kills the daemon would be tried again and again", "id", p.ID, "err", err)
	}
	if deaths > 0 {
		w.log.Error("the daemon died while working on this patch before (out of memory, a crash, or killed); see the log of that run",
			"id", p.ID, "state", p.State, "times", deaths, "gives_up_after", maxDeaths)
	}
	w.log.Debug("starting on a patch", "id", p.ID, "state", p.State)
	return deaths >= maxDeaths
}

// endAttempt records that the planning begun is over.
func (w *Worker) endAttempt() {
	if err := w.opts.Store.EndAttempt(); err != nil {
		w.log.Warn("could not record the end of a patch", "err", err)
	}
}
