// Package workspace gives confined, atomic access to the files of one
// workspace: the directory tree patchd applies patches to.
//
// Every path comes from a payload written by someone else, so every path is
// treated as hostile. Paths are validated lexically first (CleanPath, Check)
// and then resolved component by component through an os.Root, which the
// kernel confines to the workspace: absolute paths, "..", and symbolic links
// that lead outside are refused, and so are git internals (".git" anywhere)
// and the daemon's own files (its state directory, its config file: see
// Protected), even when reached through a symbolic link inside the
// workspace, a bind mount or a hard link. Writes are atomic and durable: a reader sees
// either the old content or the new, never a mix, and a write that returned
// nil survives a crash.
//
// Only regular files are read, written or removed; symbolic links,
// directories and special files as targets are refused with a *PathError.
//
// Residual risk: os.Root guarantees nothing ever escapes the workspace root,
// even under races. The checks that keep writes out of .git and the state
// directory through in-workspace symbolic links run before the operation, so
// a concurrent local process swapping directories for links at that moment
// could steer a write into those directories (never outside the root).
package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Workspace is an open workspace root. It holds no mutable state after Open
// and is safe for concurrent use; concurrent writes to the same file are
// each atomic and the last rename wins.
type Workspace struct {
	root *os.Root
	dir  string
	// deny holds clean, slash-separated prefixes refused as targets, as
	// given and, where they are symbolic links inside the workspace, as
	// resolved.
	deny []denyRule
	// aliases are patchd's own files and directories by identity (device
	// and inode), for the names no path comparison sees.
	aliases []alias
}

// Open opens dir as the workspace root. deny lists extra slash-separated
// relative prefixes that are refused as targets, as patchd's state
// directory (OpenProtected protects patchd's own paths wherever they
// are). ".git" is always refused. A deny prefix that is not a valid
// relative path inside the workspace is an error: it is a caller bug, not
// something to ignore.
func Open(dir string, deny ...string) (*Workspace, error) {
	return OpenProtected(dir, nil, deny...)
}

// OpenProtected is Open that also refuses every path leading to one of
// protect, however it is spelled: see Protected.
func OpenProtected(dir string, protect []Protected, deny ...string) (*Workspace, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", abs, err)
	}
	// OpenRoot accepts any file it can open on some platforms; a workspace
	// that is a file would fail later with confusing errors.
	fi, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open workspace %s: %w", abs, err)
	}
	if !fi.IsDir() {
		root.Close()
		return nil, fmt.Errorf("open workspace %s: not a directory", abs)
	}
	w := &Workspace{root: root, dir: abs}
	for _, d := range deny {
		clean, err := cleanLexical(d)
		if err != nil {
			root.Close()
			return nil, fmt.Errorf("open workspace %s: deny prefix: %w", abs, err)
		}
		if err := w.denyPrefix(clean, fmt.Sprintf("patchd's state directory %q", clean)); err != nil {
			root.Close()
			return nil, err
		}
	}
	if err := w.protect(protect); err != nil {
		root.Close()
		return nil, err
	}
	return w, nil
}

// denyPrefix refuses clean (a valid relative path) and, when it is reached
// through a symbolic link inside the workspace, the real directory too, or
// "real/token" would be writable. what names it in refusals.
func (w *Workspace) denyPrefix(clean, what string) error {
	w.deny = append(w.deny, denyRule{prefix: clean, what: what})
	res, err := w.resolveDir(clean, clean, false, false)
	var pe *PathError
	switch {
	case errors.As(err, &pe):
		// Missing, a loop or a link leading outside: nothing inside the
		// workspace to protect beyond the literal prefix.
	case err != nil:
		return fmt.Errorf("open workspace %s: deny prefix %s: %w", w.dir, clean, err)
	case res.missing:
	case res.dir != "" && res.dir != clean:
		w.deny = append(w.deny, denyRule{prefix: res.dir, what: what})
	}
	return nil
}

// Close releases the root directory handle. Operations after Close fail.
func (w *Workspace) Close() error {
	if err := w.root.Close(); err != nil {
		return fmt.Errorf("close workspace %s: %w", w.dir, err)
	}
	return nil
}

// Dir returns the absolute path of the workspace root, for messages and
// summaries. It must not be joined with payload paths to reach files: that
// would bypass the confinement this package exists for.
func (w *Workspace) Dir() string { return w.dir }

// Check validates a payload path lexically: CleanPath plus the deny
// prefixes. It returns the clean path. It does no I/O, so it cannot see
// symbolic links; ReadFile, WriteFile and Remove check again as they resolve.
func (w *Workspace) Check(rel string) (string, error) {
	clean, err := CleanPath(rel)
	if err != nil {
		return "", err
	}
	if err := w.checkDenied(rel, clean, ""); err != nil {
		return "", err
	}
	return clean, nil
}

// checkDenied refuses a clean path under .git or a deny prefix. via names
// the symbolic link that led there, if any, so the message explains why an
// innocent-looking path was refused.
func (w *Workspace) checkDenied(orig, clean, via string) error {
	suffix := ""
	if via != "" {
		suffix = fmt.Sprintf(" (through symbolic link %q)", via)
	}
	if hasGitComponent(clean) {
		return refuse(CodePathGit, orig, reasonGit+suffix)
	}
	for _, d := range w.deny {
		if hasPrefixComponents(clean, d.prefix) {
			return refuse(CodePathProtected, orig, fmt.Sprintf("refers to %s%s", d.what, suffix))
		}
	}
	return nil
}
