package pathmatch

import (
	"bytes"
	"path"
	"strings"
)

// Hand-written rather than a module: the Go modules for .gitignore either
// build a regular expression from each pattern and are unmaintained
// (sabhiram/go-gitignore, last changed in 2021), or come inside go-git, a
// whole git implementation whose matcher reads files through its own
// file-system layer with no bound on their size. The rules git documents
// (gitignore(5)) fit in this file, on path.Match, with the bounds below.

// Bounds on a .gitignore file, which a patch may have written.
const (
	// MaxIgnoreBytes is the largest .gitignore file worth reading; the
	// caller reads at most this much (a larger one is not used).
	MaxIgnoreBytes = 64 << 10
	// MaxIgnoreRules is the most rules taken from one file; the rest are
	// dropped (Ignore.Dropped counts them).
	MaxIgnoreRules = 1000
	// MaxRuleLen is the longest pattern kept, in bytes; a longer line is
	// dropped.
	MaxRuleLen = 512
)

// Ignore is the rules of one .gitignore file, for the paths under its
// directory.
type Ignore struct {
	// Dir is the directory of the file, relative to the root ("" for the
	// root); the rules match paths relative to it.
	Dir   string
	rules []rule
	// Dropped counts the lines not used: over MaxIgnoreRules, longer than
	// MaxRuleLen, or with a pattern path.Match refuses.
	Dropped int
}

type rule struct {
	segs     []string // anchored: the path's segments from Dir
	base     string   // not anchored: the last segment's pattern
	negate   bool     // "!": the path is not ignored
	dirOnly  bool     // a trailing "/": only directories
	anchored bool
}

// ParseIgnore reads the text of the .gitignore file in dir with git's
// rules (gitignore(5)): blank lines and lines starting with "#" are
// skipped ("\#" is a literal "#"); trailing spaces are dropped unless
// escaped with a backslash; "!" negates ("\!" is a literal "!"); a
// trailing "/" matches directories only; a pattern with a "/" at its start
// or in its middle is anchored to dir, any other matches a name at any
// depth below it; "*", "?" and "[...]" do not cross a slash; "**" as a
// whole segment matches any number of directories ("**/x", "a/**/b"), and
// a trailing "/**" everything inside; "**" inside a segment is "*".
func ParseIgnore(dir string, data []byte) *Ignore {
	ig := &Ignore{Dir: dir}
	for line := range bytes.Lines(data) {
		r, ok, counted := parseRule(string(line))
		switch {
		case !counted:
		case !ok || len(ig.rules) >= MaxIgnoreRules:
			ig.Dropped++
		default:
			ig.rules = append(ig.rules, r)
		}
	}
	return ig
}

// parseRule parses one line. counted is false for blank lines and
// comments, ok false for a rule not kept.
func parseRule(line string) (r rule, ok, counted bool) {
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	line = trimTrailingSpaces(line)
	if line == "" || line[0] == '#' {
		return rule{}, false, false
	}
	if len(line) > MaxRuleLen {
		return rule{}, false, true
	}
	switch {
	case line[0] == '!':
		r.negate = true
		line = line[1:]
	case strings.HasPrefix(line, `\!`), strings.HasPrefix(line, `\#`):
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	if line == "" {
		return rule{}, false, true
	}
	r.anchored = strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	var segs []string
	for s := range strings.SplitSeq(line, "/") {
		if s == "" {
			continue
		}
		if s != "**" {
			for strings.Contains(s, "**") {
				s = strings.ReplaceAll(s, "**", "*")
			}
		}
		if _, err := path.Match(s, ""); err != nil {
			return rule{}, false, true
		}
		if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
			continue
		}
		segs = append(segs, s)
	}
	switch {
	case len(segs) == 0:
		return rule{}, false, true
	case len(segs) > MaxGlobSegments:
		return rule{}, false, true
	case !r.anchored:
		r.base = segs[0]
		if r.base == "**" {
			r.base = "*"
		}
		return r, true, true
	case segs[len(segs)-1] == "**":
		// "a/**" is what is inside a, not a itself: one segment at
		// least.
		segs = append(segs[:len(segs)-1], "*", "**")
	}
	r.segs = segs
	return r, true, true
}

// trimTrailingSpaces drops the spaces at the end of a line that no
// backslash escapes, and the backslash of the one that does.
func trimTrailingSpaces(line string) string {
	end := len(line)
	for end > 0 && line[end-1] == ' ' {
		if end >= 2 && line[end-2] == '\\' {
			return line[:end-2] + " "
		}
		end--
	}
	return line[:end]
}

// Rules counts the rules kept.
func (ig *Ignore) Rules() int { return len(ig.rules) }

// Match reports whether a rule of the file decides about rel (a path
// relative to Dir) and, if so, whether it ignores it: the last rule that
// matches decides, as in git.
func (ig *Ignore) Match(rel string, isDir bool) (decided, ignored bool) {
	if len(ig.rules) == 0 {
		return false, false
	}
	segs := strings.Split(rel, "/")
	for i := len(ig.rules) - 1; i >= 0; i-- {
		r := &ig.rules[i]
		if r.dirOnly && !isDir {
			continue
		}
		var m bool
		if r.anchored {
			m = matchSegs(r.segs, segs)
		} else {
			m, _ = path.Match(r.base, segs[len(segs)-1])
		}
		if m {
			return true, !r.negate
		}
	}
	return false, false
}

// Ignored applies the files of a stack (outermost first, each Dir an
// ancestor of p's) to p, a path relative to the root: the deepest file
// with a rule that matches decides, as in git.
func Ignored(stack []*Ignore, p string, isDir bool) bool {
	for i := len(stack) - 1; i >= 0; i-- {
		ig := stack[i]
		rel := p
		if ig.Dir != "" {
			var ok bool
			rel, ok = strings.CutPrefix(p, ig.Dir+"/")
			if !ok {
				continue
			}
		}
		if decided, ignored := ig.Match(rel, isDir); decided {
			return ignored
		}
	}
	return false
}
