// Package worker drains the patch store into the workspace: one patch at a
// time, in order of arrival, each written atomically with its previous
// content kept for revert, and a summary written when it is done.
//
// Crash safety: before the file is written, the patch is durably marked
// "applying" with the hashes of the file before and after. After a crash a
// patch found "applying" is settled by looking at the file: the after-hash
// means the write landed (mark it applied), the before-hash means it did not
// (apply it now), anything else means someone changed the file (fail, never
// apply twice). With --git, a patch found written is committed then,
// unless its commit was made before the crash (gitRecover).
package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/checkspec"
	"github.com/patchd/patchd/internal/fsutil"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/sandbox"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// Errors of Revert.
var (
	// ErrNotApplied: only an applied patch can be reverted.
	ErrNotApplied error = &sentinel{"patch is not applied", CodeNotApplied}
	// ErrChanged: a file of the patch changed since it was applied.
	ErrChanged error = &sentinel{"file changed since the patch was applied", CodeFileChanged}
	// ErrBusy: the worker stayed busy (applying a patch) for as long as
	// the caller would wait; the revert was not started.
	ErrBusy error = &sentinel{"the worker is busy", CodeWorkerBusy}
)

// Options configures a Worker.
type Options struct {
	Store        *store.Store
	Workspace    *workspace.Workspace
	Logger       *slog.Logger
	SummariesDir string
	// Checks run after each patch is written; a failure undoes the patch.
	Checks []checkspec.Check
	// Environ is the environment the checks' variables are taken from
	// (only those allowed; see checkEnv); nil means os.Environ().
	Environ []string
	// Protect are paths a sandboxed check may not write even inside the
	// workspace: the state directory, the config file, the PID file.
	Protect []string
	// Git commits every applied patch and every revert.
	Git bool
	// Limits bound each patch's planning.
	Limits Limits
}

// Worker applies patches and reverts them, one operation at a time.
type Worker struct {
	opts Options
	log  *slog.Logger
	mu   sync.Mutex // serialises apply and revert, which touch the same files

	current atomic.Pointer[string] // the id of the patch being applied, for ErrBusy

	repoMu sync.Mutex // guards repo: a preview may find it while the worker applies
	repo   *gitRepo   // with --git, once found (gitRepo)

	swept bool // the first patch after the start swept its targets' temporary files

	seq uint64 // the Seq of the patch process works on (sameAttempt); guarded by mu

	// planSlot holds a token while a planning runs, the worker's or a
	// preview's (planTurn): one at a time, within the limits.
	planSlot chan struct{}

	yield func(context.Context) // SetYield

	// waitingSince is when the patch at the head of the queue first had
	// to wait for the workspace (failOrWait); waitLimit bounds that wait.
	waitingID    string
	waitingSince time.Time
	waitLimit    time.Duration

	sandboxAvailable func() error // sandbox.Available; a test's stand-in

	// parse and planFn are patch.ParseWith and plan; a test's stand-ins
	// (a panic injected where a bug would be).
	parse  func([]byte, patch.ParseOptions) (*patch.Block, error)
	planFn func(context.Context, *patch.Block) (*txn, error)
	// repairing, if set, is called with each summary the repair after a
	// start is about to rewrite (a test's probe).
	repairing func(id string)
}

// New returns a Worker.
func New(opts Options) *Worker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{opts: opts, log: opts.Logger.With("component", "worker"), waitLimit: maxWait, sandboxAvailable: sandbox.Available, parse: patch.ParseWith,
		planSlot: make(chan struct{}, 1)}
	w.planFn = w.plan
	return w
}

// RepairSummaries rewrites the summaries of recently finished patches that
// a crash lost or left empty (summaries are written without fsync). The
// daemon calls it once it serves, not before: it is best effort, and on a
// nearly full disk it must not take the room the start needs. It does
// not hold up the worker or the store meanwhile (see repairSummaries).
func (w *Worker) RepairSummaries() {
	n, err := w.repairSummaries(time.Now())
	if err != nil {
		w.log.Warn("check summaries a crash may have lost", "err", err)
	}
	if n > 0 {
		w.log.Info("rewrote summaries a crash may have lost", "count", n)
	}
}

// SetYield gives Run a function to call before each patch, which may wait
// a while: the daemon lets webhook requests in progress finish first, so
// that acknowledgements do not queue behind the worker. Call it before Run.
func (w *Worker) SetYield(fn func(context.Context)) { w.yield = fn }

// Run applies patches until ctx is done. It returns nil on a clean stop.
//
// Run keeps its goroutine on a thread of its own at a lower priority (on
// Linux; see workerNice), and that thread ends with Run.
func (w *Worker) Run(ctx context.Context) error {
	var backoff time.Duration
	if err := lowerPriority(); err != nil {
		w.log.Warn("could not lower its priority; it will compete with the webhook for the CPU", "err", err)
	}
	if w.opts.Git {
		// Find the repository now, before any patch is written, and pin
		// every later git command to it.
		w.mu.Lock()
		_, err := w.gitRepo()
		if err == nil {
			w.gitFinishRevert(context.WithoutCancel(ctx))
		}
		w.mu.Unlock()
		if err != nil {
			w.log.Error("patches will fail until git finds the repository", "err", err)
		}
	}
	for {
		// Next returns a queued patch without looking at ctx: without this
		// check a stop would wait for the whole backlog to be applied.
		if ctx.Err() != nil {
			return nil
		}
		p, err := w.opts.Store.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			w.log.Error("next patch", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		if w.yield != nil {
			w.yield(ctx)
			if ctx.Err() != nil {
				return nil
			}
		}
		// A patch once written is finished and recorded even if we are
		// asked to stop meanwhile; the stop waits for it, but not for
		// its planning.
		w.mu.Lock()
		w.current.Store(&p.ID)
		err = w.process(ctx, p)
		w.current.Store(nil)
		w.mu.Unlock()
		var wait *waitError
		switch {
		case err == nil:
			backoff = 0
			continue
		case errors.Is(err, errStopped):
			w.log.Info("stopped while planning a patch; it stays queued", "id", p.ID)
			return nil
		case errors.Is(err, store.ErrInvalidTransition):
			w.log.Info("the patch changed state meanwhile (dropped?); moving on", "id", p.ID, "err", err)
			continue
		case errors.As(err, &wait):
			// The workspace ran out of something that comes back (space,
			// file descriptors): the patch is queued again, first in line,
			// and tried again later; the ones after it wait, in order.
			backoff = min(max(2*backoff, time.Second), maxBackoff)
			w.log.Warn("patch waits for the workspace to recover", "id", p.ID, "err", wait.err, "retry_in", backoff)
		default:
			// The store could not record an outcome (disk full): leave the
			// patch where it is and try again shortly, less often while
			// the disk stays full.
			if transient(err) {
				backoff = min(max(2*backoff, time.Second), maxBackoff)
			} else {
				backoff = time.Second
			}
			w.log.Error("record patch outcome", "id", p.ID, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// maxBackoff bounds the wait between attempts at a patch that waits for
// the workspace to recover.
const maxBackoff = 30 * time.Second

// maxWait is how long a patch may wait for the workspace before it fails
// after all: the patches after it wait behind it, and a shortage that
// lasts (a read-only mount inside the workspace, a quota nobody raises)
// must not hold the queue for good.
const maxWait = 10 * time.Minute

// waitError is the outcome of a patch put back in the queue because the
// workspace could not take it for now.
type waitError struct{ err error }

func (e *waitError) Error() string { return "waiting: " + e.err.Error() }

// transient reports whether err is a shortage that goes away by itself or
// by a person's hand (a full disk, a quota, a file system remounted
// read-only, a failing disk, a file size limit, too many open files), as
// opposed to a fault of the patch: the store's list (fsutil.Transient).
func transient(err error) bool { return fsutil.Transient(err) }

// failOrWait fails the patch with err, unless err is transient: then the
// patch goes back to the queue with err as its note, and a *waitError
// tells Run to try it again later. Nothing was written when it is called,
// or it was put back.
func (w *Worker) failOrWait(ctx context.Context, id string, err error) error {
	if !transient(err) {
		return w.fail(ctx, id, err)
	}
	now := time.Now()
	if w.waitingID != id {
		w.waitingID, w.waitingSince = id, now
	}
	if waited := now.Sub(w.waitingSince); waited >= w.waitLimit {
		return w.fail(ctx, id, fmt.Errorf("%w; gave up after waiting %s for the workspace to recover", err, waited.Round(time.Second)))
	}
	if _, uerr := w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		if err := w.sameAttempt(q); err != nil {
			return err
		}
		q.State, q.Error, q.Code = store.StateQueued, "waiting to retry: "+w.answer(err).Error(), failCode(err)
		return nil
	}); uerr != nil {
		return uerr
	}
	return &waitError{err}
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// process applies one patch and records the outcome. An error means the
// outcome could not be recorded.
//
// Only planning watches ctx (a stop cuts it short, with errStopped); once
// the patch is being written it is finished whatever ctx says.
func (w *Worker) process(ctx context.Context, p store.Patch) error {
	w.seq = p.Seq
	stop, ctx := ctx, context.WithoutCancel(ctx)
	body, err := w.opts.Store.Body(p.ID)
	if err != nil {
		return w.fail(ctx, p.ID, fmt.Errorf("read stored patch: %w", err))
	}
	blk, err := w.parseRecovered(p.ID, body, patch.ParseOptions{MaxEdits: w.opts.Limits.MaxEdits, MaxEditsSetting: w.opts.Limits.MaxEditsSetting})
	if err != nil {
		return w.fail(ctx, p.ID, err)
	}
	if p.State == store.StateApplying && len(p.Files) > 0 {
		done, err := w.recover(ctx, p, blk)
		if done || err != nil {
			return err
		}
	} else if !w.swept {
		// Files are staged while the applying record is being written, so
		// a crash may leave temporary files of a patch still queued; only
		// the first patch after a start can have been cut short that way.
		w.removeTemps(blockTargets(blk))
	}
	w.swept = true
	started := time.Now()
	var author string
	if w.opts.Git {
		if author, err = blockAuthor(blk); err != nil {
			return w.fail(ctx, p.ID, err)
		}
	}
	t, err := w.planAttempt(stop, p, blk)
	switch {
	case errors.Is(err, errCrashed):
		return w.fail(ctx, p.ID, errCrashed)
	case errors.Is(err, errStopped):
		return err
	case err != nil:
		return w.failOrWait(ctx, p.ID, err)
	}
	if w.opts.Git {
		if err := w.gitVet(t); err != nil {
			return w.fail(ctx, p.ID, err)
		}
	}
	saveErr, stageErr := t.prepare(ctx, w.opts.Store, w.opts.Workspace, p.ID, started, w.sameAttempt)
	switch {
	case saveErr != nil && transient(saveErr):
		// The state dir's disk is full: the patch waits, like one whose
		// workspace is full, and fails after the same limit.
		return w.failOrWait(ctx, p.ID, fmt.Errorf("record the patch before writing it: %w (no file was changed)", saveErr))
	case saveErr != nil:
		return saveErr
	case stageErr != nil:
		return w.failOrWait(ctx, p.ID, stageErr)
	}
	if err := t.write(w.opts.Workspace); err != nil {
		return w.failOrWait(ctx, p.ID, err)
	}
	undo := func(reason error) error {
		if err := t.rollback(w.opts.Workspace); err != nil {
			return w.fail(ctx, p.ID, fmt.Errorf("%w; and undoing the patch failed: %v", reason, err))
		}
		return w.fail(ctx, p.ID, reason)
	}
	if err := w.runChecks(t); err != nil {
		return undo(err)
	}
	var rev string
	if w.opts.Git {
		if rev, err = w.commitPatch(blk, t, author); err != nil {
			return undo(err)
		}
	}
	return w.record(ctx, p.ID, t, rev, t.notes)
}

// record records the written transaction t as applied. When the store
// cannot take that record (its disk is full: the record carries the
// diff), the patch must not stay applying with its files written: they
// are put back (and, with --git, its commit rev dropped), and the patch
// waits as queued with the cause, or fails with it when the cause is not
// one that passes. Only if even the files cannot be put back does it stay
// applying, to be settled by its files on the next try.
func (w *Worker) record(ctx context.Context, id string, t *txn, rev string, notes []string) error {
	err := w.finish(ctx, id, t.diff(), rev, notes)
	if err == nil {
		return nil
	}
	if rerr := t.rollback(w.opts.Workspace); rerr != nil {
		w.log.Error("the patch is written but its outcome could not be recorded, nor its files put back; it stays applying and is tried again",
			"id", id, "err", err, "undo_err", rerr)
		return err
	}
	if w.opts.Git {
		w.gitUndo(id, rev, t.paths())
	}
	w.log.Warn("the patch's outcome could not be recorded; its files were put back", "id", id, "err", err)
	return w.failOrWait(ctx, id, fmt.Errorf("record the patch as applied: %w (its files were put back)", err))
}

// commitSubject is "[PATCH <id>] <first line of the description>".
func commitSubject(kind, id, description string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(description), "\n")
	if line == "" {
		line = "patch from patchd"
	}
	return fmt.Sprintf("[%s %s] %s", kind, id, line)
}

// recover settles a patch that a crash left "applying", by the files'
// content. done reports that it was settled; otherwise every file has its
// old content again and the patch is applied from scratch.
func (w *Worker) recover(ctx context.Context, p store.Patch, blk *patch.Block) (done bool, err error) {
	// A write cut short leaves its temporary file; the applying mark was
	// recorded before any write, so this finds every one.
	paths := make([]string, len(p.Files))
	for i, f := range p.Files {
		paths[i] = f.Path
	}
	w.removeTemps(paths)
	t, state, err := loadTxn(w.opts.Store, w.opts.Workspace, p, w.opts.Limits.Limits)
	if err != nil {
		return true, w.fail(ctx, p.ID, err)
	}
	switch state {
	case txnChanged:
		return true, w.fail(ctx, p.ID, errorf(CodeFileChanged, "%s changed while the patch was being applied (found after a restart); not applying it twice", strings.Join(t.changed, ", ")))
	case txnApplied:
		// The crash may have come while the checks ran: they decide now.
		if err := w.runChecks(t); err != nil {
			if rerr := t.rollback(w.opts.Workspace); rerr != nil {
				return true, w.fail(ctx, p.ID, fmt.Errorf("%w; and undoing the patch failed: %v", err, rerr))
			}
			if w.opts.Git {
				w.gitDropCommit(blk, t)
			}
			return true, w.fail(ctx, p.ID, err)
		}
		if w.opts.Git {
			return true, w.gitRecover(ctx, blk, t)
		}
		w.log.Info("found a patch written before a crash; recording it applied", "id", p.ID)
		return true, w.record(ctx, p.ID, t, "", nil)
	case txnPartial:
		// Cut short between two files: undo the written ones, then apply
		// the whole patch again.
		if err := t.rollback(w.opts.Workspace); err != nil {
			return true, w.fail(ctx, p.ID, fmt.Errorf("undo a patch cut short by a crash: %w", err))
		}
		w.log.Info("undid a patch cut short by a crash; applying it again", "id", p.ID)
	}
	if w.opts.Git {
		// The files are as before the patch; if its commit was made, a
		// crash cut short the undoing of it (record): finish that.
		w.gitDropCommit(blk, t)
	}
	return false, nil
}

// removeTemps removes the temporary files an interrupted write left next
// to each of paths.
func (w *Worker) removeTemps(paths []string) {
	for _, path := range paths {
		if n, err := w.opts.Workspace.RemoveTemps(path); err != nil {
			w.log.Warn("remove temporary files of an interrupted write", "file", path, "err", err)
		} else if n > 0 {
			w.log.Info("removed temporary files of an interrupted write", "file", path, "count", n)
		}
	}
}

// blockTargets lists every file the edits of a block name.
func blockTargets(blk *patch.Block) []string {
	var paths []string
	for _, e := range blk.Edits {
		for _, p := range e.Targets() {
			if !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	return paths
}

func (w *Worker) finish(ctx context.Context, id, diff, rev string, notes []string) error {
	p, err := w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		if err := w.sameAttempt(q); err != nil {
			return err
		}
		q.State, q.Diff, q.FinishedAt, q.Error, q.Code, q.Commit = store.StateApplied, diff, time.Now(), "", "", rev
		if notes != nil {
			q.Notes = notes
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.log.Info("patch applied", "id", id, "target", p.Target, "files", len(p.Files), "notes", len(p.Notes),
		"duration_ms", float64(p.FinishedAt.Sub(p.StartedAt).Microseconds())/1000)
	w.summarize(p)
	return nil
}

// sameAttempt refuses to record anything on q unless it is the attempt
// process works on: a patch dropped while it was planned may have been
// sent again since with another body, a new attempt (a new Seq) that is
// not this one's to move on.
func (w *Worker) sameAttempt(q *store.Patch) error {
	if q.Seq != w.seq {
		return fmt.Errorf("%w: %s was sent again meanwhile (seq %d, worked on %d)", store.ErrInvalidTransition, q.ID, q.Seq, w.seq)
	}
	return nil
}

// fail records the patch failed with cause: its message as the answer
// gives it (no path of this machine), and its code (failCode).
func (w *Worker) fail(ctx context.Context, id string, cause error) error {
	reason, code := w.answer(cause).Error(), failCode(cause)
	p, err := w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		if q.State == store.StateFailed { // dropped meanwhile: keep why
			return fmt.Errorf("%w: %s is already failed: %s", store.ErrInvalidTransition, id, q.Error)
		}
		if err := w.sameAttempt(q); err != nil {
			return err
		}
		q.State, q.Error, q.Code, q.FinishedAt = store.StateFailed, reason, code, time.Now()
		if q.StartedAt.IsZero() {
			q.StartedAt = q.FinishedAt
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.log.Warn("patch failed", "id", id, "target", p.Target, "err", reason)
	w.summarize(p)
	return nil
}

// Revert restores the files of an applied patch, byte for byte, refusing if
// any of them changed since. It waits for the worker (a patch being
// applied) only as long as ctx allows: then it returns ErrBusy naming the
// patch, and nothing was done. Once it starts restoring files it no
// longer heeds ctx: it is carried through and recorded, or, when the
// files cannot all be restored or the revert cannot be committed or
// recorded, the files are put back as the patch left them and the patch
// stays applied. Either way it is logged.
func (w *Worker) Revert(ctx context.Context, id string) (store.Patch, error) {
	asked := time.Now()
	if err := w.lock(ctx); err != nil {
		doing := ""
		if cur := w.current.Load(); cur != nil {
			doing = " applying patch " + *cur
		}
		waited := time.Since(asked).Round(time.Millisecond)
		w.log.Warn("revert not started: the worker is busy"+doing, "id", id, "waited", waited.String())
		return store.Patch{}, fmt.Errorf("%w%s; the revert of %s was not started (waited %s), retry later", ErrBusy, doing, id, waited)
	}
	defer w.mu.Unlock()
	p, ok := w.opts.Store.Get(id)
	if !ok {
		return p, fmt.Errorf("patch %q: %w", id, store.ErrNotFound)
	}
	if p.State != store.StateApplied {
		return p, fmt.Errorf("%w (it is %s)", ErrNotApplied, p.State)
	}
	return w.revert(ctx, p)
}

// revert reverts the applied patch p, holding w.mu. Files a revert that
// a crash cut short restored already are left as they are, and the revert
// is finished: the rest restored, committed (unless the files are
// committed already) and recorded.
func (w *Worker) revert(ctx context.Context, p store.Patch) (store.Patch, error) {
	id := p.ID
	t, state, err := loadTxn(w.opts.Store, w.opts.Workspace, p, w.opts.Limits.Limits)
	if err != nil {
		return p, err
	}
	if state == txnChanged {
		return p, fmt.Errorf("%w: %s", ErrChanged, strings.Join(t.changed, ", "))
	}
	var restored []int // by a revert cut short: undoRevert keeps them
	for i, f := range t.files {
		if !f.writtenOK {
			restored = append(restored, i)
		}
	}
	if len(restored) > 0 {
		w.log.Info("finishing a revert cut short by a crash", "id", id, "files_restored", len(restored), "files", len(t.files))
	}
	if w.opts.Git {
		if _, err := w.gitRepo(); err != nil {
			return p, err
		}
	}
	// From here on the revert is carried through (or undone) and recorded
	// even if the caller gives up: files restored under a patch still
	// marked applied are what must never be left.
	ctx = context.WithoutCancel(ctx)
	if err := t.rollback(w.opts.Workspace); err != nil {
		return p, w.undoRevert(t, restored, id, "", fmt.Errorf("restore the files: %w", err))
	}
	var rev string // the revert's commit, made now
	if w.opts.Git {
		if rev, err = w.commitRevert(t, id, p.Description); err != nil {
			return p, w.undoRevert(t, restored, id, "", fmt.Errorf("commit the revert: %w", err))
		}
	}
	p, err = w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		q.State, q.RevertedAt = store.StateReverted, time.Now()
		return nil
	})
	if err != nil {
		return p, w.undoRevert(t, restored, id, rev, fmt.Errorf("record the revert: %w", err))
	}
	w.log.Info("patch reverted", "id", id, "target", p.Target, "files", len(p.Files))
	w.summarize(p)
	return p, nil
}

// undoRevert puts back what the patch made of the files a revert already
// restored (and, with --git, drops the revert's commit rev and unstages
// it), so that the files match the patch's record, still applied. It
// returns the error to report: cause, and what became of the files.
// The files of t listed in keep were restored by an earlier revert that
// a crash cut short; they stay restored (what the patch made of them is
// not known), and asking again finishes the revert.
func (w *Worker) undoRevert(t *txn, keep []int, id, rev string, cause error) error {
	for _, i := range keep {
		t.files[i].writtenOK = true // redo skips them
	}
	err := t.redo(w.opts.Workspace)
	if w.opts.Git {
		w.gitUndo(id, rev, t.paths())
	}
	if err != nil {
		w.log.Error("revert failed midway and could not be undone: some files are restored, the patch is still recorded applied", "id", id, "cause", cause, "err", err)
		return fmt.Errorf("revert %s: %w; and putting the files back failed, some are restored: %v", id, cause, err)
	}
	if len(keep) > 0 {
		w.log.Error("revert failed and was undone, but for the files a revert cut short by a crash had restored; the patch stays applied", "id", id, "err", cause)
		return fmt.Errorf("revert %s: %w; the files a revert cut short by a crash had restored stay restored, the others are as the patch left them; ask again to finish the revert", id, cause)
	}
	w.log.Error("revert failed and was undone: the files are as the patch left them, and it stays applied", "id", id, "err", cause)
	return fmt.Errorf("revert %s: %w; nothing was reverted (the files are as the patch left them)", id, cause)
}

// gitUndo drops commit rev if it is still HEAD (keeping the files as they
// are now) and unstages paths, after the files of a commit were put back.
func (w *Worker) gitUndo(id, rev string, paths []string) {
	if rev != "" {
		if head, err := w.git("rev-parse", "--short", "HEAD"); err == nil && strings.TrimSpace(head) == rev {
			if _, err := w.git("reset", "-q", "--soft", "HEAD~1"); err != nil {
				w.log.Warn("files put back, but their commit stays", "id", id, "commit", rev, "err", err)
			}
		}
	}
	if _, err := w.git(append([]string{"reset", "-q", "--"}, paths...)...); err != nil {
		w.log.Warn("files put back, but the index keeps them staged", "id", id, "err", err)
	}
}

// lock takes w.mu, or gives up when ctx ends first; then nothing holds it
// on the caller's behalf (a lock taken too late is released at once).
func (w *Worker) lock(ctx context.Context) error {
	if w.mu.TryLock() {
		return nil
	}
	got := make(chan struct{})
	go func() {
		w.mu.Lock()
		close(got)
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		go func() {
			<-got
			w.mu.Unlock()
		}()
		return ctx.Err()
	}
}

// Preview computes what the block would change, as a unified diff, without
// writing anything. A refusal is the error the patch would fail with,
// with --git's refusals too (its author, the files it may not write, the
// uncommitted changes it would sweep in), checked in the same order.
// Planning stops when ctx is done, within the same limits as a patch's.
//
// Preview does not wait for the worker: it plans while a patch is being
// applied or checked, or a revert made. It waits only for a planning
// already running (the worker's or another preview's, each within
// Limits.PlanTimeout), since one planning at a time keeps memory within
// the limits. Every file is replaced by an atomic rename, so a preview
// reads each file either as it was before a patch or as the patch left
// it, never a mix; but files are read one by one, so a preview made while
// a patch of several files is written (or undone, or reverted) may see
// some of them before it and some after. Under --git, a file written by a
// patch whose commit is not made yet counts as an uncommitted change, as
// it would for a patch applied at that moment. The result is only ever a
// preview: a patch is planned again, under the worker's lock, when it is
// applied. Its git commands only read, and take no lock of the index
// (GIT_OPTIONAL_LOCKS=0, gitRepo), so they never make the worker's commit
// fail.
func (w *Worker) Preview(ctx context.Context, blk *patch.Block) (diff string, files []string, err error) {
	if w.opts.Git {
		if _, err := blockAuthor(blk); err != nil {
			return "", nil, err
		}
	}
	t, err := w.planWithin(ctx, blk)
	if err != nil {
		return "", nil, err
	}
	if w.opts.Git {
		if err := w.gitVet(t); err != nil {
			return "", nil, err
		}
	}
	return t.diff(), t.paths(), nil
}
