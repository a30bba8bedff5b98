package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// txn is a patch's effect on the workspace, computed in memory before any
// file is touched: every file it changes, with the content before and after.
// It is written only whole; its "before" contents are kept in the store so
// that it can be undone after a failed write, a crash or a revert.
type txn struct {
	files   []txnFile
	notes   []string // how edits were fitted (whitespace, offsets)
	changed []string // files found neither before nor after (loadTxn)
}

type txnFile struct {
	path      string
	old, new  []byte
	existed   bool // before the patch
	deleted   bool // by the patch
	mode      fs.FileMode
	writtenOK bool              // written by this process, for rollback
	staged    *workspace.Staged // new content staged ahead of write
}

// plan computes the transaction of a block against the workspace as it is:
// every edit of every file, in memory, within the limits, until ctx is
// done. Nothing is written.
func (w *Worker) plan(ctx context.Context, blk *patch.Block) (*txn, error) {
	modes := map[string]fs.FileMode{}
	// Files are told apart by what they are, not how a path spells them:
	// two paths to one file (through a link) must chain their edits, or
	// the later write would silently undo the earlier one.
	changes, err := blk.PlanWithin(ctx, func(path string) ([]byte, bool, error) {
		data, mode, exists, err := w.readLimited(path)
		if exists && data == nil {
			data = []byte{} // an empty file, which Diff must not take for a creation
		}
		modes[path] = mode.Perm()
		return data, exists, err
	}, w.opts.Workspace.FileID, w.opts.Limits.Limits)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, errorf(CodeNoChange, "the patch changes nothing: every edit leaves its file as it is")
	}
	t := &txn{}
	for _, c := range changes {
		mode := modes[c.Path]
		if !c.Existed {
			// A moved file keeps its mode; a new one gets the one the
			// patch says (0644 or 0755), else the default.
			mode = modes[c.RenamedFrom]
			if c.Mode != 0 {
				mode = c.Mode
			}
		}
		t.files = append(t.files, txnFile{path: c.Path, old: c.Old, new: c.New, existed: c.Existed, deleted: c.Deleted, mode: mode})
		for _, n := range c.Notes {
			t.notes = append(t.notes, c.Path+": "+n)
		}
	}
	return t, nil
}

func blobName(i int) string { return strconv.Itoa(i) + ".before" }

// inlineBlobMax is the most old content a patch keeps inside its applying
// journal record rather than in blob files. Inline, the backups cost no
// fsync of their own (they share the record's, which the group commit
// shares with other records) instead of three; but the journal keeps them
// for good and compaction copies them, so large files get blob files.
const inlineBlobMax = 64 << 10

// save records the transaction durably before anything is written: the old
// contents, then the patch as "applying" with every file's hashes. Small
// old contents travel in the applying record itself, so that both are
// durable at once; larger ones are blob files written first.
func (t *txn) save(ctx context.Context, st *store.Store, id string, started time.Time, same func(*store.Patch) error) error {
	total := 0
	for _, f := range t.files {
		if f.existed {
			total += len(f.old)
		}
	}
	var inline []store.Blob
	fcs := make([]store.FileChange, len(t.files))
	for i, f := range t.files {
		if f.existed {
			if total <= inlineBlobMax {
				inline = append(inline, store.Blob{Name: blobName(i), Data: f.old})
			} else if err := st.PutBlob(id, blobName(i), f.old); err != nil {
				return err
			}
		}
		fcs[i] = store.FileChange{Path: f.path, OldHash: hash(f.old), NewHash: hash(f.new),
			OldMode: uint32(f.mode), Existed: f.existed, Deleted: f.deleted}
	}
	_, err := st.UpdateBlobs(ctx, id, inline, func(q *store.Patch) error {
		if err := same(q); err != nil {
			return err
		}
		q.State, q.StartedAt, q.Files = store.StateApplying, started, fcs
		return nil
	})
	return err
}

// prepare records the transaction (save) and, at the same time, stages the
// new content of every file the patch modifies: written to a temporary
// file next to it and synced, not yet renamed. Writing and syncing the
// data is the slow part of a large file, and until the rename nothing in
// the workspace changed, so it need not wait for the record. New files are
// left to write, so that no directory is made before the record is durable.
//
// saveErr means the patch could not be recorded (the caller retries it
// later), stageErr that a file could not be written (the patch fails); in
// both cases nothing is staged any more. same refuses to record it on a
// patch that is no longer the attempt planned (Worker.sameAttempt).
func (t *txn) prepare(ctx context.Context, st *store.Store, ws *workspace.Workspace, id string, started time.Time, same func(*store.Patch) error) (saveErr, stageErr error) {
	// save reads t.files meanwhile: the stager fills a slice of its own.
	staged := make([]*workspace.Staged, len(t.files))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, f := range t.files {
			if !f.existed || f.deleted {
				continue
			}
			sf, err := ws.Stage(f.path, f.new, f.mode)
			if err != nil {
				stageErr = fmt.Errorf("%w (no file was changed)", err) // err names the file
				return
			}
			staged[i] = sf
		}
	}()
	saveErr = t.save(ctx, st, id, started, same)
	<-done
	for i, sf := range staged {
		t.files[i].staged = sf
	}
	if saveErr != nil || stageErr != nil {
		t.abortStaged()
	}
	return saveErr, stageErr
}

// abortStaged removes every staged file not yet committed.
func (t *txn) abortStaged() {
	for i := range t.files {
		if f := &t.files[i]; f.staged != nil {
			f.staged.Abort()
			f.staged = nil
		}
	}
}

// write applies every file atomically, one after the other: a staged file
// is renamed into place, any other written whole. If one fails (a full
// disk, a path that turned out to be a directory), the files already
// written get their old content back: all or nothing.
func (t *txn) write(ws *workspace.Workspace) error {
	defer t.abortStaged()
	for i := range t.files {
		f := &t.files[i]
		var err error
		switch {
		case f.deleted:
			err = ws.Remove(f.path)
		case f.staged != nil:
			err = f.staged.Commit()
			f.staged = nil
		default:
			mode := f.mode // a moved file brings its own
			if mode == 0 {
				mode = workspace.DefaultMode
			}
			err = ws.WriteFile(f.path, f.new, mode)
		}
		if err != nil {
			if rerr := t.rollback(ws); rerr != nil {
				return fmt.Errorf("%v; and undoing the files written before it failed: %v", err, rerr)
			}
			return fmt.Errorf("%w (no file was changed)", err)
		}
		f.writtenOK = true
	}
	return nil
}

// rollback restores the old content of every file marked written.
func (t *txn) rollback(ws *workspace.Workspace) error {
	var errs []error
	for i := len(t.files) - 1; i >= 0; i-- {
		f := &t.files[i]
		if !f.writtenOK {
			continue
		}
		var err error
		if f.existed {
			err = ws.WriteFile(f.path, f.old, f.mode)
		} else {
			err = ws.Remove(f.path)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", f.path, err))
			continue
		}
		f.writtenOK = false
	}
	return errors.Join(errs...)
}

// redo writes again what the patch made of every file rollback restored,
// undoing a revert that cannot be carried through.
func (t *txn) redo(ws *workspace.Workspace) error {
	var errs []error
	for i := range t.files {
		f := &t.files[i]
		if f.writtenOK {
			continue
		}
		var err error
		if f.deleted {
			err = ws.Remove(f.path)
		} else {
			mode := f.mode
			if mode == 0 {
				mode = workspace.DefaultMode
			}
			err = ws.WriteFile(f.path, f.new, mode)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rewrite %s: %w", f.path, err))
			continue
		}
		f.writtenOK = true
	}
	return errors.Join(errs...)
}

// diff is the unified diff of the whole transaction.
func (t *txn) diff() string {
	var b strings.Builder
	for _, f := range t.files {
		var old, new []byte
		if f.existed {
			old = f.old
		}
		if !f.deleted {
			new = f.new
		}
		b.WriteString(patch.Diff(f.path, old, new))
	}
	return b.String()
}

type txnState int

const (
	txnNotApplied txnState = iota // every file as before
	txnApplied                    // every file as after
	txnPartial                    // some before, some after: cut short
	txnChanged                    // some file is neither: someone edited it
)

// loadTxn rebuilds a recorded transaction from the store and the workspace,
// and says where the workspace stands. Files as after are marked written,
// so that rollback restores exactly those.
//
// A file larger than lim.MaxFileBytes (0: any size) is not read: the error names
// the limit.
func loadTxn(st *store.Store, ws *workspace.Workspace, p store.Patch, lim patch.Limits) (*txn, txnState, error) {
	t := &txn{}
	var before, after int
	for i, fc := range p.Files {
		f := txnFile{path: fc.Path, existed: fc.Existed, deleted: fc.Deleted, mode: ioMode(fc.OldMode)}
		if fc.Existed {
			old, err := st.Blob(p.ID, blobName(i))
			if err != nil {
				return nil, 0, fmt.Errorf("read the content of %s before the patch: %w", fc.Path, err)
			}
			if hash(old) != fc.OldHash {
				return nil, 0, fmt.Errorf("stored content of %s before the patch is damaged", fc.Path)
			}
			f.old = old
		}
		cur, _, exists, err := ws.ReadFileMax(fc.Path, lim.MaxFileBytes)
		if err != nil {
			return nil, 0, limitOf(err, fc.Path, lim)
		}
		isAfter := (fc.Deleted && !exists) || (!fc.Deleted && exists && hash(cur) == fc.NewHash)
		isBefore := (!fc.Existed && !exists) || (fc.Existed && exists && hash(cur) == fc.OldHash)
		switch {
		case isAfter:
			after++
			f.new, f.writtenOK = cur, true
		case isBefore:
			before++
		default:
			t.changed = append(t.changed, fc.Path)
		}
		t.files = append(t.files, f)
	}
	switch {
	case len(t.changed) > 0:
		return t, txnChanged, nil
	case after == len(t.files):
		return t, txnApplied, nil
	case before == len(t.files):
		return t, txnNotApplied, nil
	}
	return t, txnPartial, nil
}
