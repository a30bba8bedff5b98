package workspace

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/patchd/patchd/internal/fsutil"
)

// Protected is a file or directory of patchd's own (its state directory,
// its config file, its summaries) that no patch may read or write, under
// any name. It is refused by its resolved path, so symbolic links in the
// workspace's own path or inside the workspace do not hide it, and, when it
// exists at Open, by device and inode, so that a bind mount or a hard link
// inside the workspace is refused too.
type Protected struct {
	// Path is where it is, absolute; it need not exist yet.
	Path string
	// What names it in refusals, e.g. "patchd's state directory".
	What string
	// Optional marks a path that may be the workspace itself or contain it
	// (the summaries may go to the workspace's root); it is then not
	// protected. For any other Protected that is an error.
	Optional bool
}

// denyRule is a prefix refused as a target and what it is, for messages.
type denyRule struct {
	prefix string // clean, slash-separated, relative to the root
	what   string
}

// alias is a protected file or directory known by identity.
type alias struct {
	fi   fs.FileInfo
	what string
}

// protect adds the rules for each of ps.
func (w *Workspace) protect(ps []Protected) error {
	if len(ps) == 0 {
		return nil
	}
	ws := fsutil.Resolve(w.dir)
	for _, p := range ps {
		// Errors of Open name the path as it is on this machine, for the
		// person starting patchd; refusals reach senders of patches, and
		// name it as a path in the workspace, or not at all.
		named := fmt.Sprintf("%s %q", p.What, p.Path)
		what := p.What + " (outside the workspace)"
		real := fsutil.Resolve(p.Path)
		if fsutil.Within(ws, real) || fsutil.SameAsOrAbove(p.Path, w.dir) {
			if p.Optional {
				continue
			}
			return fmt.Errorf("open workspace %s: %s is the workspace or contains it", w.dir, named)
		}
		if fsutil.Within(real, ws) {
			rel, err := filepath.Rel(ws, real)
			if err != nil {
				return fmt.Errorf("open workspace %s: %s: %w", w.dir, named, err)
			}
			clean, err := cleanLexical(filepath.ToSlash(rel))
			if err != nil {
				return fmt.Errorf("open workspace %s: %s: %w", w.dir, named, err)
			}
			what = fmt.Sprintf("%s %q", p.What, clean)
			if err := w.denyPrefix(clean, what); err != nil {
				return err
			}
		}
		// What does not exist yet has no other names yet either.
		if fi, err := os.Stat(p.Path); err == nil {
			w.aliases = append(w.aliases, alias{fi: fi, what: what})
		}
	}
	return nil
}

// checkAlias refuses fi, a directory on the way to a target or the target
// itself, when it is one of patchd's own under another name.
func (w *Workspace) checkAlias(orig string, fi fs.FileInfo, via string) error {
	for _, a := range w.aliases {
		if os.SameFile(fi, a.fi) {
			reason := fmt.Sprintf("refers to %s under another name (the same file system object)", a.what)
			if via != "" {
				reason += fmt.Sprintf(" (through symbolic link %q)", via)
			}
			return refuse(CodePathProtected, orig, reason)
		}
	}
	return nil
}
