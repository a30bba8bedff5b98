package worker

import (
	"cmp"
	"path/filepath"
	"slices"
	"strings"
)

// answerError is an error as its answer gives it: its message with the
// paths of this machine made relative to the workspace (answer). Its code
// and errors.Is see through it.
type answerError struct {
	msg string
	err error
}

func (e *answerError) Error() string { return e.msg }
func (e *answerError) Unwrap() error { return e.err }

// answer returns err with every absolute path of this machine that the
// worker knows of in its message made relative to the workspace: the
// workspace's own (as given and as resolved: "/home/u/ws/src/a.py" is
// "src/a.py", the workspace itself "."), with --git the repository's
// top and git directory ("..", "../.git" when the repository holds the
// workspace in a subdirectory), and patchd's own files that a sandboxed
// check's refusal may name (Options.Protect, the summaries). git's messages name files by such paths
// ("fatal: Unable to create '/home/u/ws/.git/index.lock'"), and a check's
// output may; answers go to whoever sent the patch. nil stays nil.
func (w *Worker) answer(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	rel := w.relative(msg)
	if rel == msg {
		return err
	}
	return &answerError{msg: rel, err: err}
}

// relative is s with the paths answer names made relative.
func (w *Worker) relative(s string) string {
	ws := w.opts.Workspace.Dir()
	real := resolved(ws)
	bases := []string{ws, real, w.opts.SummariesDir}
	bases = append(bases, w.opts.Protect...)
	if r := w.repo; r != nil {
		bases = append(bases, r.top, resolved(r.top), r.gitDir, resolved(r.gitDir))
	}
	// The longest first, so that a path inside another is made relative
	// as itself.
	slices.SortFunc(bases, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, b := range slices.Compact(bases) {
		if !filepath.IsAbs(b) || filepath.Dir(b) == b || !strings.Contains(s, b) {
			continue // not a path, or the root: every path would match
		}
		rel, err := filepath.Rel(real, resolved(b))
		if err != nil {
			continue
		}
		s = replacePath(s, b, filepath.ToSlash(rel))
	}
	return s
}

// resolved is p through its symbolic links, or p when that fails.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// replacePath replaces base in s by rel where base is a whole path or the
// start of one: "<base>/x" is "<rel>/x" ("x" for a rel of "."), "<base>"
// is "<rel>", and "<base>2/x", another path, stays.
func replacePath(s, base, rel string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, base)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+len(base):]
		switch {
		case strings.HasPrefix(rest, "/") && rel == ".":
			rest = rest[1:]
		case rest == "" || rest[0] == '/' || !isPathByte(rest[0]):
			b.WriteString(rel)
		default:
			b.WriteString(base)
		}
		s = rest
	}
}

// isPathByte reports a byte that can continue a file name in a message.
func isPathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '+' || c == '~' || c == '@' || c >= 0x80
}
