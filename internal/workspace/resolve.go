package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// maxLinks bounds symbolic links followed in one resolution, like the
// kernel's own limit (40 on Linux), so a link cycle fails instead of spinning.
const maxLinks = 40

// maxSteps bounds the whole walk; MaxPathLen and maxLinks already bound it,
// this only guards against a directory that keeps appearing and vanishing.
const maxSteps = 4 * MaxPathLen

// resolution is the outcome of walking the directory part of a path.
type resolution struct {
	// dir is the directory's real path relative to the root, with no
	// symbolic links in it; "" is the root.
	dir string
	// via is the last symbolic link followed, for messages.
	via string
	// created lists directories the walk made, outermost first.
	created []string
	// missing reports that a component did not exist and create was off;
	// partial is then the directory's path with the links before that
	// component resolved.
	missing bool
	partial string
}

// resolveDir walks dir (a clean relative path, "" for the root) one
// component at a time through the root, following symbolic links itself so
// that the deny rules apply to where a path really leads, not to how it is
// spelled. With create, missing directories are made (0755) on the way.
// Denied prefixes are checked before each step when checkDeny is set, so a
// directory is never created inside .git or the state directory.
//
// Links are resolved the way os.Root resolves them: the target is spliced
// in place of the link and ".." is applied lexically to the already
// resolved components, which are real directories, so the result is the
// directory os.Root would reach.
func (w *Workspace) resolveDir(orig, dir string, create, checkDeny bool) (resolution, error) {
	var res resolution
	done, pending := "", dir
	links, steps := 0, 0
	for pending != "" {
		if steps++; steps > maxSteps {
			return res, ioErrorf("resolve %s: too many steps", orig)
		}
		c, rest, _ := strings.Cut(pending, "/")
		cand := joinRel(done, c)
		if checkDeny {
			if err := w.checkDenied(orig, cand, res.via); err != nil {
				return res, err
			}
		}
		fi, err := w.root.Lstat(cand)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				res.missing, res.partial = true, joinRel(done, pending)
				return res, nil
			}
			if err := w.root.Mkdir(cand, 0o755); err != nil {
				if errors.Is(err, fs.ErrExist) {
					// Another writer made it first; look at it again.
					continue
				}
				return res, mapRootErr(orig, ioErrorf("create directory %s: %w", cand, err))
			}
			res.created = append(res.created, cand)
		case err != nil:
			return res, mapRootErr(orig, ioErrorf("resolve %s: %w", orig, err))
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxLinks {
				return res, refuse(CodePathSymlink, orig, reasonLinkLoop)
			}
			target, err := w.root.Readlink(cand)
			if err != nil {
				return res, mapRootErr(orig, ioErrorf("resolve %s: read link %s: %w", orig, cand, err))
			}
			next, ok := spliceLink(done, target, rest)
			if !ok {
				return res, refuse(CodePathOutside, orig, fmt.Sprintf("passes through symbolic link %q, which leads outside the workspace", cand))
			}
			res.via = cand
			// Restart from the root: the spliced target may hold links of
			// its own, and re-checking real directories is cheap.
			done, pending = "", next
			continue
		case fi.IsDir():
			if checkDeny {
				if err := w.checkAlias(orig, fi, res.via); err != nil {
					return res, err
				}
			}
		default:
			return res, refuse(CodePathNotRegular, orig, fmt.Sprintf("has a parent that is not a directory (%q)", cand))
		}
		done, pending = cand, rest
	}
	res.dir = done
	return res, nil
}

// spliceLink replaces a link that sits in directory dir by its target and
// appends the rest of the path. ok is false when the result leaves the
// root. Absolute targets are refused even when they name a place inside
// the workspace, because os.Root refuses them too.
func spliceLink(dir, target, rest string) (next string, ok bool) {
	if target == "" || target[0] == '/' {
		return "", false
	}
	next = path.Join(dir, target, rest)
	switch {
	case next == ".":
		return "", true
	case next == "..", strings.HasPrefix(next, "../"):
		return "", false
	}
	return next, true
}

// mapRootErr turns os.Root's refusal to leave the root, which it reports
// with an unexported error, into a *PathError with a readable reason. The
// resolver catches escapes before os.Root sees them, so this only fires when
// the tree changed between the two.
func mapRootErr(orig string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent" {
		return &PathError{Path: orig, Reason: "leads outside the workspace through a symbolic link", Err: err, code: CodePathOutside}
	}
	if errors.Is(err, syscall.ELOOP) {
		return &PathError{Path: orig, Reason: reasonLinkLoop, Err: err, code: CodePathSymlink}
	}
	return err
}
