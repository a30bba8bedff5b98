// Package pathmatch matches slash-separated relative paths against globs
// with "**" and against .gitignore rules. It is a leaf: the standard
// library only, no I/O.
//
// Patterns come from payloads and from files patches wrote, so both are
// hostile: each segment is matched with path.Match (no regular
// expressions, so no backtracking blow-up), "**" by dynamic programming
// over the segments (a pattern of n segments against a path of m costs
// O(n·m) segment matches, never exponential), and the sizes are bounded
// (MaxGlobSegments, and the limits of ParseIgnore).
package pathmatch

import (
	"fmt"
	"path"
	"strings"
)

// MaxGlobSegments is the most slash-separated segments a Glob may have.
const MaxGlobSegments = 64

// Glob is a compiled glob: path.Match syntax in each slash-separated
// segment ("*", "?", "[a-z]", "\\" escapes, none of which crosses a
// slash), and "**" as a whole segment for zero or more segments. It
// matches whole paths: "*.go" matches "main.go" only, not "cmd/main.go";
// "**/*.go" matches both.
type Glob struct {
	segs []string
}

// CompileGlob checks a glob's syntax and compiles it. A leading "./" and
// doubled slashes are ignored. An empty glob, an absolute one, one with
// a ".." segment, more than MaxGlobSegments segments or a segment
// path.Match refuses is an error.
func CompileGlob(pattern string) (*Glob, error) {
	p := strings.TrimPrefix(pattern, "./")
	switch {
	case p == "":
		return nil, fmt.Errorf("glob %q is empty", pattern)
	case strings.HasPrefix(p, "/"):
		return nil, fmt.Errorf("glob %q is absolute; globs are relative to the listed directory", pattern)
	}
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		switch {
		case s == "" || s == ".":
			continue
		case s == "..":
			return nil, fmt.Errorf("glob %q has a \"..\" segment; list a directory with path instead", pattern)
		case s != "**" && strings.Contains(s, "**"):
			// Git reads "a**b" as "a*b"; say so rather than guess.
			return nil, fmt.Errorf("glob %q: \"**\" must be a whole segment, as in \"src/**/*.go\"", pattern)
		}
		if _, err := path.Match(s, ""); err != nil {
			return nil, fmt.Errorf("glob %q: segment %q: %w", pattern, s, err)
		}
		// Consecutive "**" match what one does.
		if s == "**" && len(segs) > 0 && segs[len(segs)-1] == "**" {
			continue
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("glob %q matches nothing", pattern)
	}
	if len(segs) > MaxGlobSegments {
		return nil, fmt.Errorf("glob %q has more than %d segments", pattern, MaxGlobSegments)
	}
	return &Glob{segs: segs}, nil
}

// Match reports whether the relative, slash-separated path p matches.
func (g *Glob) Match(p string) bool {
	return matchSegs(g.segs, strings.Split(p, "/"))
}

// MayMatchUnder reports whether some path under the directory dir (a
// relative, slash-separated path; "" for the top) could match, so that a
// walk need not enter a directory where nothing can. It may answer true
// when nothing does match; never false when something could.
func (g *Glob) MayMatchUnder(dir string) bool {
	if dir == "" {
		return true
	}
	states := prefixStates(g.segs, strings.Split(dir, "/"))
	for i, ok := range states {
		// Pattern left for at least one more segment, or a "**" that
		// can take more.
		if ok && (i < len(g.segs) || i > 0 && g.segs[i-1] == "**") {
			return true
		}
	}
	return false
}

// matchSegs reports whether the segments name match the pattern segments
// pat, "**" matching zero or more whole segments.
func matchSegs(pat, name []string) bool {
	return prefixStates(pat, name)[len(pat)]
}

// prefixStates returns, for each i from 0 to len(pat), whether pat[:i]
// matches all of name. It fills the table of pattern prefix against name
// prefix one name segment at a time: O(len(pat)·len(name)) matches.
func prefixStates(pat, name []string) []bool {
	// cur[i]: pat[:i] matches the name segments consumed so far.
	cur := make([]bool, len(pat)+1)
	next := make([]bool, len(pat)+1)
	cur[0] = true
	closeStars(pat, cur)
	for _, n := range name {
		clear(next)
		for i, ok := range cur {
			if !ok {
				continue
			}
			if i < len(pat) {
				if p := pat[i]; p == "**" {
					next[i+1] = true
				} else if m, _ := path.Match(p, n); m {
					next[i+1] = true
				}
			}
			if i > 0 && pat[i-1] == "**" {
				// The "**" just matched takes this segment too.
				next[i] = true
			}
		}
		closeStars(pat, next)
		cur, next = next, cur
	}
	return cur
}

// closeStars lets every "**" match zero segments: a state before one is a
// state after it too.
func closeStars(pat []string, st []bool) {
	for i, p := range pat {
		if st[i] && p == "**" {
			st[i+1] = true
		}
	}
}
