package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// commitPatch commits the written transaction t of blk as the patch's
// commit, with its subject, author and tag. An error means nothing was
// committed (the index is as it was); a tag that fails is only logged.
func (w *Worker) commitPatch(blk *patch.Block, t *txn, author string) (string, error) {
	rev, err := w.gitCommit(t, commitSubject("PATCH", blk.ID, blk.Description), author, blk.Tag)
	switch {
	case rev == "" && err != nil:
		return "", fmt.Errorf("commit the patch: %w", err)
	case err != nil:
		w.log.Warn("patch committed but not tagged", "id", blk.ID, "commit", rev, "err", err)
	default:
		w.log.Info("patch committed", "id", blk.ID, "commit", rev, "tag", blk.Tag)
	}
	return rev, nil
}

// gitRecover settles, under --git, a patch a crash left applying with
// every file written (t, from loadTxn), once its checks passed again
// (recover). The crash came either before its commit, which is then made
// as a normal apply makes it, or after it: then the files are committed
// already and are not committed twice, and a tag the crash cut off is
// added. Whatever cannot be done undoes the patch.
func (w *Worker) gitRecover(ctx context.Context, blk *patch.Block, t *txn) error {
	undo := func(reason error) error {
		if err := t.rollback(w.opts.Workspace); err != nil {
			return w.fail(ctx, blk.ID, fmt.Errorf("%w; and undoing the patch failed: %v", reason, err))
		}
		return w.fail(ctx, blk.ID, reason)
	}
	dirty, err := w.gitDirty(t.paths())
	if err != nil {
		return undo(fmt.Errorf("settle a patch written before a crash: %w", err))
	}
	if len(dirty) == 0 {
		// Committed before the crash: by the patch's own commit if HEAD
		// is it (the worker commits nothing else in between).
		rev, _ := w.gitHeadIs("PATCH", blk.ID, blk.Description)
		if rev == "" {
			w.log.Warn("found a patch written before a crash, its files committed but not by its commit; recording it applied", "id", blk.ID)
		} else {
			w.log.Info("found a patch written and committed before a crash; recording it applied", "id", blk.ID, "commit", rev)
			if blk.Tag != "" {
				if err := w.gitEnsureTag(blk.Tag); err != nil {
					w.log.Warn("patch committed but not tagged", "id", blk.ID, "commit", rev, "err", err)
				}
			}
		}
		return w.record(ctx, blk.ID, t, rev, nil)
	}
	w.log.Info("found a patch written but not committed before a crash; committing it", "id", blk.ID)
	author, err := blockAuthor(blk)
	if err != nil {
		return undo(err)
	}
	rev, err := w.commitPatch(blk, t, author)
	if err != nil {
		return undo(err)
	}
	return w.record(ctx, blk.ID, t, rev, nil)
}

// gitDropCommit drops the patch's commit if it is HEAD while the files of
// t are as before the patch: a crash cut short the putting back of a
// patch whose record failed (record), after its files, before its commit.
func (w *Worker) gitDropCommit(blk *patch.Block, t *txn) {
	if rev, _ := w.gitHeadIs("PATCH", blk.ID, blk.Description); rev != "" {
		w.log.Info("dropping the commit of a patch undone before a crash", "id", blk.ID, "commit", rev)
		w.gitUndo(blk.ID, rev, t.paths())
	}
}

// gitHeadIs returns HEAD's short name if HEAD is the commit patchd makes
// for patch id (kind PATCH or REVERT), else "".
func (w *Worker) gitHeadIs(kind, id, description string) (string, error) {
	rev, subject, err := w.gitHead()
	if err != nil || subject != strings.TrimSpace(commitSubject(kind, id, description)) {
		return "", err
	}
	return rev, nil
}

// gitHead returns HEAD's short name and subject.
func (w *Worker) gitHead() (rev, subject string, err error) {
	out, err := w.git("log", "-1", "--format=%h%n%s", "HEAD")
	if err != nil {
		return "", "", err
	}
	rev, subject, _ = strings.Cut(strings.TrimSpace(out), "\n")
	return rev, strings.TrimSpace(subject), nil
}

// commitRevert commits the files a revert restored (t), unless they are
// committed already: by the revert's own commit, which a crash cut off
// from its record, or otherwise. rev is the commit made now, if any.
func (w *Worker) commitRevert(t *txn, id, description string) (rev string, err error) {
	dirty, err := w.gitDirty(t.paths())
	if err != nil {
		return "", err
	}
	if len(dirty) == 0 {
		head, _ := w.gitHeadIs("REVERT", id, description)
		w.log.Info("revert committed already", "id", id, "commit", head)
		return "", nil
	}
	if rev, err = w.gitCommit(t, commitSubject("REVERT", id, description), "", ""); err != nil {
		return "", err
	}
	w.log.Info("revert committed", "id", id, "commit", rev)
	return rev, nil
}

// gitFinishRevert records reverted a patch whose revert a crash cut off
// after its commit: HEAD is "[REVERT <id>] …" while the patch is still
// applied. Its files say whether it was (revert checks them), so a
// HEAD that merely looks so changes nothing. Called with w.mu held.
func (w *Worker) gitFinishRevert(ctx context.Context) {
	_, subject, err := w.gitHead()
	if err != nil {
		return
	}
	rest, ok := strings.CutPrefix(subject, "[REVERT ")
	id, _, ok2 := strings.Cut(rest, "] ")
	if !ok || !ok2 {
		return
	}
	p, found := w.opts.Store.Get(id)
	if !found || p.State != store.StateApplied || subject != strings.TrimSpace(commitSubject("REVERT", id, p.Description)) {
		return
	}
	if t, state, err := loadTxn(w.opts.Store, w.opts.Workspace, p, w.opts.Limits.Limits); err != nil || state != txnNotApplied {
		if err == nil {
			w.log.Warn("HEAD is the commit of a revert, but the patch's files are not all restored; it stays applied", "id", id, "changed", strings.Join(t.changed, ", "))
		}
		return
	}
	w.log.Info("found a revert committed before a crash; recording it", "id", id)
	if _, err := w.revert(ctx, p); err != nil {
		w.log.Error("finish a revert committed before a crash", "id", id, "err", err)
	}
}

// gitEnsureTag tags HEAD with tag unless it is tagged so already.
func (w *Worker) gitEnsureTag(tag string) error {
	out, err := w.git("tag", "--points-at", "HEAD")
	if err != nil {
		return err
	}
	if slices.Contains(strings.Split(strings.TrimSpace(out), "\n"), tag) {
		return nil
	}
	_, err = w.git("tag", tag)
	return err
}

// gitDirty lists those of paths whose work tree or index differs from
// HEAD, ignored files included (git add refuses those).
func (w *Worker) gitDirty(paths []string) ([]string, error) {
	out, err := w.git(append([]string{"status", "--porcelain", "-z", "--ignored", "--"}, paths...)...)
	if err != nil {
		return nil, err
	}
	return statusPaths(out), nil
}

// statusPaths reads the paths of git status --porcelain -z: entries are
// "XY path", NUL-terminated and unquoted; a rename or copy is followed by
// its source path as an entry of its own.
func statusPaths(out string) []string {
	var paths []string
	fields := strings.Split(out, "\x00")
	for i := 0; i < len(fields); i++ {
		e := fields[i]
		if len(e) < 4 {
			continue
		}
		paths = append(paths, e[3:])
		if e[0] == 'R' || e[0] == 'C' {
			i++
		}
	}
	return paths
}
