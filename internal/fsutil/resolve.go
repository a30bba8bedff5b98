package fsutil

import (
	"os"
	"path/filepath"
)

// Resolve returns the absolute path p really names: symbolic links in the
// part that exists are followed, and the rest (not created yet) is joined
// to it as written. Two spellings of one place resolve to the same string,
// so that places patchd protects can be compared by where they are rather
// than by how they were written. Bind mounts and hard links are not seen
// here; SameFile on what exists is the check for those.
func Resolve(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for cur := abs; ; {
		if real, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{real}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// Within reports whether path is dir or lies below it; both must be
// clean absolute paths (as Resolve returns them).
func Within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !startsWithDotDot(rel)
}

func startsWithDotDot(rel string) bool {
	return len(rel) >= 3 && rel[:2] == ".." && os.IsPathSeparator(rel[2])
}

// SameAsOrAbove reports whether the existing directory a is dir itself or
// one of its ancestors by device and inode, which catches what no path
// comparison can: bind mounts and other aliases. It is false when either
// does not exist.
func SameAsOrAbove(a, dir string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	for cur := dir; ; {
		if fi, err := os.Stat(cur); err == nil && os.SameFile(fa, fi) {
			return true
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return false
		}
		cur = parent
	}
}
