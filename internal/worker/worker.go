// Package worker drains the patch store into the workspace: one patch at a
// time, in order of arrival, each written atomically with its previous
// content kept for revert, and a summary written when it is done.
//
// Crash safety: before the file is written, the patch is durably marked
// "applying" with the hashes of the file before and after. After a crash a
// patch found "applying" is settled by looking at the file: the after-hash
// means the write landed (mark it applied), the before-hash means it did not
// (apply it now), anything else means someone changed the file (fail, never
// apply twice).
package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// Errors of Revert.
var (
	// ErrNotApplied: only an applied patch can be reverted.
	ErrNotApplied = errors.New("patch is not applied")
	// ErrChanged: a file of the patch changed since it was applied.
	ErrChanged = errors.New("file changed since the patch was applied")
)

// Options configures a Worker.
type Options struct {
	Store        *store.Store
	Workspace    *workspace.Workspace
	Logger       *slog.Logger
	SummariesDir string
}

// Worker applies patches and reverts them, one operation at a time.
type Worker struct {
	opts Options
	log  *slog.Logger
	mu   sync.Mutex // serialises apply and revert, which touch the same files
}

// New returns a Worker.
func New(opts Options) *Worker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{opts: opts, log: opts.Logger}
}

// Run applies patches until ctx is done. It returns nil on a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	for {
		p, err := w.opts.Store.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			w.log.Error("worker: next patch", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		// A patch once started is finished and recorded even if we are
		// asked to stop meanwhile; the stop waits for it.
		w.mu.Lock()
		err = w.process(context.WithoutCancel(ctx), p)
		w.mu.Unlock()
		if err != nil {
			// The store could not record an outcome (disk full): leave the
			// patch where it is and try again shortly.
			w.log.Error("worker: record patch outcome", "id", p.ID, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const beforeBlob = "0.before"

// process applies one patch and records the outcome. An error means the
// outcome could not be recorded.
func (w *Worker) process(ctx context.Context, p store.Patch) error {
	st, ws := w.opts.Store, w.opts.Workspace
	body, err := st.Body(p.ID)
	if err != nil {
		return w.fail(ctx, p.ID, fmt.Sprintf("read stored patch: %v", err))
	}
	blk, err := patch.Parse(body)
	if err != nil {
		return w.fail(ctx, p.ID, err.Error())
	}
	target := blk.TargetFile

	if p.State == store.StateApplying && len(p.Files) > 0 {
		done, err := w.recover(ctx, p)
		if done || err != nil {
			return err
		}
	}

	started := time.Now()
	old, mode, exists, err := ws.ReadFile(target)
	if err != nil {
		return w.fail(ctx, p.ID, err.Error())
	}
	if !exists {
		return w.fail(ctx, p.ID, fmt.Sprintf("target file %s does not exist", target))
	}
	if old == nil {
		old = []byte{} // an empty file, which Diff must not take for a creation
	}
	out, matches, err := blk.Patch.Apply(target, old)
	if err != nil {
		return w.fail(ctx, p.ID, err.Error())
	}
	if err := st.PutBlob(p.ID, beforeBlob, old); err != nil {
		return err
	}
	fc := store.FileChange{Path: target, OldHash: hash(old), NewHash: hash(out), OldMode: uint32(mode.Perm()), Existed: true}
	if _, err := st.Update(ctx, p.ID, func(q *store.Patch) error {
		q.State, q.StartedAt, q.Files = store.StateApplying, started, []store.FileChange{fc}
		return nil
	}); err != nil {
		return err
	}
	if err := ws.WriteFile(target, out, mode.Perm()); err != nil {
		return w.fail(ctx, p.ID, fmt.Sprintf("write %s: %v", target, err))
	}
	return w.finish(ctx, p.ID, old, out, matches)
}

// recover settles a patch that a crash left "applying". done reports that
// it was settled; otherwise the file still has its old content and the
// patch is applied from scratch.
func (w *Worker) recover(ctx context.Context, p store.Patch) (done bool, err error) {
	f := p.Files[0]
	cur, _, exists, err := w.opts.Workspace.ReadFile(f.Path)
	if err != nil {
		return true, w.fail(ctx, p.ID, err.Error())
	}
	switch h := hash(cur); {
	case exists && h == f.NewHash:
		old, err := w.opts.Store.Blob(p.ID, beforeBlob)
		if err != nil {
			return true, w.fail(ctx, p.ID, fmt.Sprintf("read the content before the patch: %v", err))
		}
		w.log.Info("recovered a patch applied before a crash", "id", p.ID)
		return true, w.finish(ctx, p.ID, old, cur, p.Matches)
	case exists == f.Existed && h == f.OldHash:
		return false, nil
	}
	return true, w.fail(ctx, p.ID, fmt.Sprintf("%s changed while the patch was being applied (found after a restart); not applying it twice", f.Path))
}

func (w *Worker) finish(ctx context.Context, id string, old, out []byte, matches int) error {
	p, ok := w.opts.Store.Get(id)
	if !ok {
		return fmt.Errorf("patch %s vanished", id)
	}
	diff := patch.Diff(p.Files[0].Path, old, out)
	p, err := w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		q.State, q.Diff, q.Matches, q.FinishedAt, q.Error = store.StateApplied, diff, matches, time.Now(), ""
		return nil
	})
	if err != nil {
		return err
	}
	w.log.Info("patch applied", "id", id, "target", p.Target, "matches", matches,
		"duration_ms", float64(p.FinishedAt.Sub(p.StartedAt).Microseconds())/1000)
	w.summarize(p)
	return nil
}

func (w *Worker) fail(ctx context.Context, id, reason string) error {
	p, err := w.opts.Store.Update(ctx, id, func(q *store.Patch) error {
		q.State, q.Error, q.FinishedAt = store.StateFailed, reason, time.Now()
		if q.StartedAt.IsZero() {
			q.StartedAt = q.FinishedAt
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.log.Warn("patch failed", "id", id, "target", p.Target, "error", reason)
	w.summarize(p)
	return nil
}

// Revert restores the files of an applied patch, byte for byte, refusing if
// any of them changed since.
func (w *Worker) Revert(ctx context.Context, id string) (store.Patch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ws := w.opts.Store, w.opts.Workspace
	p, ok := st.Get(id)
	if !ok {
		return p, fmt.Errorf("patch %q: %w", id, store.ErrNotFound)
	}
	if p.State != store.StateApplied {
		return p, fmt.Errorf("%w (it is %s)", ErrNotApplied, p.State)
	}
	for _, f := range p.Files {
		cur, _, exists, err := ws.ReadFile(f.Path)
		if err != nil {
			return p, err
		}
		if !exists || hash(cur) != f.NewHash {
			return p, fmt.Errorf("%w: %s", ErrChanged, f.Path)
		}
	}
	for _, f := range p.Files {
		old, err := st.Blob(id, beforeBlob)
		if err != nil {
			return p, fmt.Errorf("read the content before the patch: %w", err)
		}
		if hash(old) != f.OldHash {
			return p, fmt.Errorf("stored content of %s before the patch is damaged", f.Path)
		}
		if err := ws.WriteFile(f.Path, old, ioMode(f.OldMode)); err != nil {
			return p, err
		}
	}
	p, err := st.Update(ctx, id, func(q *store.Patch) error {
		q.State, q.RevertedAt = store.StateReverted, time.Now()
		return nil
	})
	if err != nil {
		return p, err
	}
	w.log.Info("patch reverted", "id", id, "target", p.Target)
	w.summarize(p)
	return p, nil
}
