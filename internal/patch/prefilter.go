package patch

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// A literal prefilter for regex edits.
//
// RE2 scans the whole text, and when a pattern's literal prefix is common
// (every line of a file calling compute(...)) its matcher starts at nearly
// every line. Many patterns cannot cross a line and must contain some
// literal byte string; for those it is enough to look for the literal with
// bytes.Index and run the regexp only on the lines that hold it.
//
// Why the matches are exactly those of a scan over the whole content, when
// prefilterLiteral accepts the pattern:
//
//   - No part of the pattern can match a '\n' byte (lineLocal), and every
//     match contains the non-empty literal, which holds no '\n'; so every
//     match is non-empty and lies inside one line, before the '\n' that
//     ends it. A line without the literal holds no match, and skipping it
//     loses nothing.
//   - lineMatches runs the regexp on slices of whole lines: each starts at
//     the content's start or just after a '\n', and ends just after a '\n'
//     or at the content's end. The leftmost-first scan, of the content or
//     of such a slice, cannot carry a match over a '\n', so it finds a
//     line's matches after those of the lines before it, and its search
//     enters each line at the line's start; from there each match found
//     depends only on the bytes from the search position to the match's
//     end, all inside the line, and on the empty-width assertions at the
//     match's positions. No empty match exists, so the rules for an empty
//     match next to the previous one never come into play.
//   - Those assertions see the same in the slice as in the content. At the
//     slice's start the matcher sees the start of a text where the content
//     has a '\n' before it: (?m)^ holds in both, and \b and \B see a
//     non-word character in both; only \A (and ^ without (?m)) would tell
//     them apart, and prefilterLiteral refuses them. The slice's end is
//     after a '\n', which no match reaches, so every assertion a match asks
//     at its end ((?m)$, \b, \B) is asked before a '\n' or at the
//     content's end, alike in both. (Patterns with \z, or $ without (?m),
//     are refused too, though by this they could be allowed.) A '\n' is a
//     one-byte rune, so UTF-8 decoding, invalid bytes included, runs the
//     same from the slice's start as through the content, forwards and, for
//     the rune before a position, backwards.
//
// prefilter_test.go compares the two on random patterns and contents.

// prefilterLiteral reports whether the prefilter applies to pattern and,
// if so, the literal every match contains. pattern must compile.
func prefilterLiteral(pattern string) (lit []byte, ok bool) {
	// regexp.Compile parses with the Perl flags and simplifies.
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	if !lineLocal(re) {
		return nil, false
	}
	lit = requiredLiteral(re)
	return lit, len(lit) > 0
}

// lineLocal reports whether no node of re can match a '\n' and re asserts
// nothing about the text's start or end.
func lineLocal(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		// '\n' folds to nothing else, so case folding changes nothing.
		for _, r := range re.Rune {
			if r == '\n' {
				return false
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
				return false
			}
		}
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpAnyCharNotNL,
		syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary,
		syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest,
		syntax.OpRepeat, syntax.OpConcat, syntax.OpAlternate:
	default:
		// OpAnyChar, OpBeginText, OpEndText, and any op added later.
		return false
	}
	for _, sub := range re.Sub {
		if !lineLocal(sub) {
			return false
		}
	}
	return true
}

// requiredLiteral returns a byte string every match of re contains, or nil.
// It is the longest it finds, not necessarily the longest there is.
func requiredLiteral(re *syntax.Regexp) []byte {
	switch re.Op {
	case syntax.OpLiteral:
		return literalBytes(re, nil)
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiteral(re.Sub[0])
	case syntax.OpRepeat:
		// Simplify rewrites counted repetitions; this is for safety.
		if re.Min >= 1 {
			return requiredLiteral(re.Sub[0])
		}
	case syntax.OpConcat:
		// A match is the children's matches end to end, so adjacent
		// literals join into one run.
		var best, run []byte
		keep := func(b []byte) {
			if len(b) > len(best) {
				best = b
			}
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral {
				if b := literalBytes(sub, run); b != nil {
					run = b
					continue
				}
			}
			keep(run)
			run = nil
			keep(requiredLiteral(sub))
		}
		keep(run)
		return best
	}
	// Alternations, stars, quests and empty-width ops require nothing.
	return nil
}

// literalBytes returns a copy of dst followed by the UTF-8 bytes a
// case-sensitive literal matches, or nil when they are not fixed. The matcher decodes the text
// the way utf8.DecodeRune does, so a valid rune matches exactly its
// encoding (a pattern's \xff is U+00FF, bytes C3 BF, as regexp has it),
// but U+FFFD also matches each invalid byte, and a surrogate matches
// nothing.
func literalBytes(re *syntax.Regexp, dst []byte) []byte {
	if re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 {
		return nil
	}
	for _, r := range re.Rune {
		if !utf8.ValidRune(r) || r == utf8.RuneError {
			return nil
		}
	}
	// A fresh slice, so that a run never shares an array with a kept one.
	out := make([]byte, len(dst), len(dst)+utf8.UTFMax*len(re.Rune))
	copy(out, dst)
	for _, r := range re.Rune {
		out = utf8.AppendRune(out, r)
	}
	return out
}

// chunkLen is how near the next line holding the literal must start for
// Apply's lineMatches to scan it with the current one. Each regexp call has a
// fixed cost, which dominates on short lines that all hold the literal,
// and the scan of any run of whole lines finds the same matches as the
// scans of its lines one by one; but the regexp's backtracker clears a
// bitmap the size of its input for every match it looks for, so the runs
// are kept short.
const chunkLen = 256

// lineMatches returns the matches of re in content, as re.FindAllIndex (or
// re.FindAllSubmatchIndex when submatch) would, running re only on the
// lines that contain lit, together with the next such line when it starts
// less than chunk bytes after the first one's start (and any lines in
// between). lit must come from prefilterLiteral for re's pattern.
func lineMatches(re *regexp.Regexp, lit, content []byte, submatch bool, chunk int) [][]int {
	var found [][]int
	eachLineMatches(re, lit, content, submatch, chunk, unlimitedRoom(), stopper{}, func(ms [][]int) error {
		found = append(found, ms...)
		return nil
	})
	return found
}

// eachLineMatches gives fn the matches lineMatches finds, a run of lines
// at a time, so that they need not all be held at once. Each run's
// matches are bounded by rm as findAll bounds them, and st is looked at
// between runs.
func eachLineMatches(re *regexp.Regexp, lit, content []byte, submatch bool, chunk int, rm room, st stopper, fn func(ms [][]int) error) error {
	// index is the first occurrence of lit at or after from, or -1.
	index := func(from int) int {
		if i := bytes.Index(content[from:], lit); i >= 0 {
			return from + i
		}
		return -1
	}
	// lineEnd is the end of the line holding content[i], its '\n'
	// included.
	lineEnd := func(i int) int {
		if j := bytes.IndexByte(content[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(content)
	}
	// pos is always the start of a line, and next the first occurrence of
	// lit at or after it.
	for pos, next := 0, index(0); next >= 0; {
		start := pos + bytes.LastIndexByte(content[pos:next], '\n') + 1
		end := lineEnd(next + len(lit))
		for {
			next = -1
			if end < len(content) {
				next = index(end)
			}
			if next < 0 || next-start >= chunk {
				break
			}
			end = lineEnd(next + len(lit))
		}
		ms, err := findAll(re, content[start:end], submatch, rm, st)
		if err != nil {
			return err
		}
		for _, m := range ms {
			for k, v := range m {
				if v >= 0 { // -1 is a group that took no part
					m[k] = v + start
				}
			}
		}
		if len(ms) > 0 {
			if err := fn(ms); err != nil {
				return err
			}
		}
		pos = end
	}
	return nil
}

// testHookApplyLines, when set by a test, is called with the literal each
// time Apply takes the prefilter's path.
var testHookApplyLines func(lit []byte)

// applyLines is Apply's path for a pattern prefilterLiteral accepts, with
// lit its literal and re its compiled form: content with every match
// replaced, as the whole-content scan would, and the number of matches
// (out is nil when there are none). The output stays within rm, and st is
// looked at as it goes.
func (r Regex) applyLines(re *regexp.Regexp, lit, content []byte, rm room, st stopper) (out []byte, matches int, err error) {
	if testHookApplyLines != nil {
		testHookApplyLines(lit)
	}
	var t template
	if r.Expand {
		t = compileTemplate(re, r.Replacement)
	} else {
		t = template{{lit: r.Replacement}}
	}
	b := expander{t: t, src: content, rm: rm, st: st, size: int64(len(content))}
	last := 0
	err = eachLineMatches(re, lit, content, r.Expand, chunkLen, rm, st, func(ms [][]int) error {
		if b.out == nil {
			// The first matches found: room for the rest as they are.
			b.out = make([]byte, 0, min(int64(len(content))+int64(len(r.Replacement))*int64(len(ms)), rm.max))
		}
		for _, m := range ms {
			if err := b.replace(last, m); err != nil {
				return err
			}
			last = m[1]
		}
		matches += len(ms)
		return nil
	})
	if err != nil || matches == 0 {
		return nil, 0, err
	}
	return append(b.out, content[last:]...), matches, nil
}
