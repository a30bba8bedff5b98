package patch

import (
	"fmt"
	"strconv"
	"strings"
)

// level is how loosely lines are compared when the text an edit looks for
// (a search text, a hunk's context and removed lines) is located in a
// file. Levels are tried in order and the first one that finds the text
// decides: a looser level never overrides what a stricter one found, and
// an ambiguity at one level is not resolved by a looser one.
type level int

const (
	// levelExact compares line texts; line endings are never compared,
	// so a CRLF file matches an LF patch.
	levelExact level = iota
	// levelTrailing ignores whitespace at the end of lines.
	levelTrailing
	// levelPunct also reads typographic quotes, dashes and non-breaking
	// spaces as their ASCII forms, which models write instead (and back),
	// as OpenAI's apply_patch does.
	levelPunct
	// levelIndent accepts lines that are all indented by the same extra
	// (or missing) whitespace; inserted lines get the same offset.
	levelIndent
	// levelWidth compares indentation by width, a tab counting as 4, 8 or
	// 2 columns: a patch written with spaces matches a file indented with
	// tabs. Inserted lines are indented in the file's style.
	levelWidth
	numLevels
)

// maxPlaces bounds how many matches a search collects when it only needs
// to know whether a text is unique (and where the first few are).
const maxPlaces = 100

// matchBudget bounds the line comparisons spent verifying candidate
// positions in one search, so that a pathological file (the same line a
// hundred thousand times) cannot stall the daemon. Past it the search
// reports what it found so far.
const matchBudget = 1 << 24

// match is a place where the looked-for lines were found, and how the
// lines an edit inserts there must be indented to fit.
type match struct {
	pos int // index of the first line
	lv  level
	// levelIndent: the file's indentation is add + the patch's, or the
	// patch's is remove + the file's.
	add, remove string
	// levelWidth: columns per tab, and columns to add to the patch's
	// indentation; tabs tells whether the file indents with tabs.
	tabW, delta int
	tabs        bool
	// places lists the first lines (1-based) of every place the text
	// matched when there were several, and chose says which rule picked
	// this one (hunk order, line numbers), for the change's notes.
	places []int
	chose  string
}

// reindent shifts the indentation of a line the edit inserts as the match
// requires. Blank lines stay blank.
func (m match) reindent(s string) string {
	if trimRight(s) == "" {
		return s
	}
	switch m.lv {
	case levelIndent:
		switch {
		case m.add != "":
			return m.add + s
		case m.remove != "":
			if strings.HasPrefix(s, m.remove) {
				return s[len(m.remove):]
			}
			_, rest := splitIndent(s)
			return rest
		}
	case levelWidth:
		ind, rest := splitIndent(s)
		c := max(columns(ind, m.tabW)+m.delta, 0)
		if m.tabs {
			return strings.Repeat("\t", c/m.tabW) + strings.Repeat(" ", c%m.tabW) + rest
		}
		return strings.Repeat(" ", c) + rest
	}
	return s
}

// describe says how the text was matched, for a change's notes; "" for an
// exact match.
func (m match) describe() string {
	switch m.lv {
	case levelTrailing:
		return "ignoring trailing whitespace"
	case levelPunct:
		return "reading typographic quotes, dashes and non-breaking spaces as ASCII"
	case levelIndent:
		if m.add != "" {
			return "with " + describeWS(m.add) + " more indentation in the file (re-indented)"
		}
		return "with " + describeWS(m.remove) + " less indentation in the file (re-indented)"
	case levelWidth:
		style := "spaces"
		if m.tabs {
			style = "tabs"
		}
		return fmt.Sprintf("comparing indentation by width (a tab as %d columns; re-indented with %s)", m.tabW, style)
	}
	return ""
}

func describeWS(s string) string {
	tabs := strings.Count(s, "\t")
	spaces := len(s) - tabs
	plural := func(n int, w string) string {
		if n == 1 {
			return "1 " + w
		}
		return fmt.Sprintf("%d %ss", n, w)
	}
	switch {
	case tabs == 0:
		return plural(spaces, "space")
	case spaces == 0:
		return plural(tabs, "tab")
	}
	return plural(tabs, "tab") + " and " + plural(spaces, "space")
}

// columns is the width of an indentation with tabs every tabW columns.
func columns(indent string, tabW int) int {
	c := 0
	for i := 0; i < len(indent); i++ {
		if indent[i] == '\t' {
			c = (c/tabW + 1) * tabW
		} else {
			c++
		}
	}
	return c
}

// lineKey is what a level compares of a line; candidates are found by
// hashing keys, then verified.
func lineKey(s string, lv level) string {
	switch lv {
	case levelExact:
		return s
	case levelTrailing:
		return trimRight(s)
	case levelPunct:
		return asciiPunct(trimRight(s))
	}
	return trimSpace(s)
}

// asciiPunct replaces typographic punctuation and Unicode spaces by their
// ASCII forms.
func asciiPunct(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	return punctReplacer.Replace(s)
}

var punctReplacer = strings.NewReplacer(
	"‐", "-", "‑", "-", "‒", "-", "–", "-", "—", "-", "―", "-", "−", "-",
	"‘", "'", "’", "'", "‚", "'", "‛", "'",
	"“", `"`, "”", `"`, "„", `"`, "‟", `"`,
	" ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ",
	" ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", " ", "　", " ",
)

func hashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// find returns the positions in [lo, hi) of d where want matches at level
// lv, in order, at most limit of them. With disjoint, a match starts only
// after the previous one ends (the "all" of search/replace). Candidates are
// found with a rolling hash over the lines' keys, so the cost is linear in
// the file plus the verification of the (few) candidates.
func find(d *doc, want []string, lo, hi int, lv level, limit int, disjoint bool) []match {
	n := len(want)
	if n == 0 || hi-lo < n || limit <= 0 {
		return nil
	}
	if lv == levelWidth && !d.containsTab() && !anyTab(want) {
		return nil // the same as levelIndent without tabs
	}
	const base = 1000003
	var target, pow uint64 = 0, 1
	for k, w := range want {
		target = target*base + hashKey(lineKey(w, lv))
		if k > 0 {
			pow *= base
		}
	}
	fh := make([]uint64, hi-lo)
	for i := range fh {
		fh[i] = hashKey(lineKey(d.lines[lo+i].text, lv))
	}
	var h uint64
	for k := 0; k < n; k++ {
		h = h*base + fh[k]
	}
	var out []match
	budget := matchBudget
	next := lo
	for i := lo; i+n <= hi; i++ {
		if i > lo {
			h = (h-fh[i-1-lo]*pow)*base + fh[i+n-1-lo]
		}
		if h != target || i < next {
			continue
		}
		if budget -= n; budget < 0 {
			break
		}
		if m, ok := verify(d, i, want, lv); ok {
			out = append(out, m)
			if len(out) >= limit {
				break
			}
			if disjoint {
				next = i + n
			}
		}
	}
	return out
}

func anyTab(lines []string) bool {
	for _, l := range lines {
		if strings.IndexByte(l, '\t') >= 0 {
			return true
		}
	}
	return false
}

// verify reports whether want matches the lines of d at pos at level lv,
// and how inserted lines are to be indented there.
func verify(d *doc, pos int, want []string, lv level) (match, bool) {
	if pos < 0 || pos+len(want) > len(d.lines) {
		return match{}, false
	}
	win := d.lines[pos : pos+len(want)]
	m := match{pos: pos, lv: lv}
	switch lv {
	case levelExact:
		for k, w := range want {
			if win[k].text != w {
				return m, false
			}
		}
		return m, true
	case levelTrailing, levelPunct:
		for k, w := range want {
			if lineKey(win[k].text, lv) != lineKey(w, lv) {
				return m, false
			}
		}
		return m, true
	case levelIndent:
		return verifyIndent(m, win, want)
	case levelWidth:
		for _, tabW := range [...]int{4, 8, 2} {
			if m, ok := verifyWidth(m, win, want, tabW); ok {
				return m, true
			}
		}
	}
	return m, false
}

// verifyIndent checks that every non-blank line of want is its window line
// with the same indentation added or removed, and blank lines meet blank
// lines.
func verifyIndent(m match, win []line, want []string) (match, bool) {
	set := false
	for k, w := range want {
		fi, fr := splitIndent(trimRight(win[k].text))
		pi, pr := splitIndent(trimRight(w))
		if fr != pr {
			return m, false
		}
		if fr == "" {
			continue
		}
		if !set {
			switch {
			case strings.HasSuffix(fi, pi):
				m.add = fi[:len(fi)-len(pi)]
			case strings.HasSuffix(pi, fi):
				m.remove = pi[:len(pi)-len(fi)]
			default:
				return m, false
			}
			set = true
			continue
		}
		if m.remove != "" {
			if pi != m.remove+fi {
				return m, false
			}
		} else if fi != m.add+pi {
			return m, false
		}
	}
	return m, true
}

// verifyWidth checks that every non-blank line of want is its window line
// with indentation wider or narrower by the same number of columns.
func verifyWidth(m match, win []line, want []string, tabW int) (match, bool) {
	m.tabW = tabW
	set := false
	for k, w := range want {
		fi, fr := splitIndent(trimRight(win[k].text))
		pi, pr := splitIndent(trimRight(w))
		if fr != pr {
			return m, false
		}
		if fr == "" {
			continue
		}
		if strings.IndexByte(fi, '\t') >= 0 {
			m.tabs = true
		}
		delta := columns(fi, tabW) - columns(pi, tabW)
		if !set {
			m.delta, set = delta, true
		} else if delta != m.delta {
			return m, false
		}
	}
	return m, true
}

// where says where locate looks for a text and how it picks among several
// matches.
type where struct {
	// from is where the previous hunk of the file ended (0 for the
	// first): among several matches, those at or after it are taken
	// first, as hunks come in the order of the file.
	from int
	prev int // the previous hunk's number, for notes (0 for none)
	// expected is the position line numbers give, -1 when none: among
	// several matches left, the nearest one wins.
	expected int
	first    bool // take the first match at or after from (an @@ anchor narrowed the search)
	atEnd    bool // the text must end the file (*** End of File)
}

// locate finds want in d. It returns the match, or a *MatchError without
// File and What (the caller names those) that either lists the places of
// an ambiguous text or shows the closest lines of a missing one.
//
// A text that matches in one place is found there. Where it matches in
// several, the places before the previous hunk (wh.from) are set aside if
// any place is left, and then the one nearest to wh.expected wins; two
// equally near, or several without line numbers, are an ambiguity. The
// match then lists the places it was chosen among, and says why.
func locate(d *doc, want []string, wh where) (match, *MatchError) {
	n := len(d.lines)
	if wh.atEnd {
		pos := n - len(want)
		for lv := levelExact; lv < numLevels; lv++ {
			if m, ok := verify(d, pos, want, lv); ok {
				return m, nil
			}
		}
		return match{}, notFound(d, want, true)
	}
	if wh.expected >= wh.from && wh.expected >= 0 {
		// Where the line numbers say, and unique: no need to look
		// through the whole file (a diff of a large file has many
		// hunks). A line of want that occurs once in the file proves it.
		if m, ok := verify(d, wh.expected, want, levelExact); ok && d.unique(want) {
			return m, nil
		}
	}
	for lv := levelExact; lv < numLevels; lv++ {
		if wh.first {
			if ms := find(d, want, wh.from, n, lv, 1, false); len(ms) == 1 {
				return ms[0], nil
			}
			continue
		}
		ms := find(d, want, 0, n, lv, maxPlaces, false)
		switch len(ms) {
		case 0:
			continue
		case 1:
			return ms[0], nil
		}
		return choose(d, want, lv, ms, wh)
	}
	return match{}, notFound(d, want, false)
}

// choose applies the hunk order, then the line numbers, to the places ms
// where want matched at level lv.
func choose(d *doc, want []string, lv level, ms []match, wh where) (match, *MatchError) {
	cands, after, why := ms, 0, ""
	if wh.from > 0 {
		var later []match
		if len(ms) >= maxPlaces {
			later = find(d, want, wh.from, len(d.lines), lv, maxPlaces, false)
		} else {
			for _, m := range ms {
				if m.pos >= wh.from {
					later = append(later, m)
				}
			}
		}
		if len(later) > 0 && len(later) < len(ms) {
			cands, after = later, wh.prev
			why = fmt.Sprintf("the only one after hunk %d", wh.prev)
		}
	}
	if len(cands) > 1 {
		if wh.expected < 0 {
			me := ambiguous(cands)
			me.After = after
			return match{}, me
		}
		best, tie := 0, -1
		for i, m := range cands[1:] {
			switch dist, bestDist := abs(m.pos-wh.expected), abs(cands[best].pos-wh.expected); {
			case dist < bestDist:
				best, tie = i+1, -1
			case dist == bestDist:
				tie = i + 1
			}
		}
		if tie >= 0 {
			me := ambiguous(cands)
			me.After, me.Near, me.Tied = after, wh.expected+1, [2]int{cands[best].pos + 1, cands[tie].pos + 1}
			return match{}, me
		}
		cands = cands[best : best+1]
		why = fmt.Sprintf("nearest to line %d, where its line numbers put it", wh.expected+1)
	}
	m := cands[0]
	m.chose = why
	for _, c := range ms {
		m.places = append(m.places, c.pos+1)
	}
	return m, nil
}

// tieNote says, for a change's notes, how a text that matched in several
// places was placed; "" when it matched in one.
func (m match) tieNote(what string) string {
	if len(m.places) < 2 {
		return ""
	}
	count := strconv.Itoa(len(m.places))
	if len(m.places) >= maxPlaces {
		count = "at least " + count
	}
	return fmt.Sprintf("%s matched %s places (lines %s); applied at line %d, %s", what, count, placeList(m.places), m.pos+1, m.chose)
}

// placeList writes line numbers as "2, 6, 10", eliding after a few.
func placeList(places []int) string {
	var b strings.Builder
	for i, p := range places {
		if i == quotePlaces {
			b.WriteString(", " + ellipsis)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func ambiguous(ms []match) *MatchError {
	e := &MatchError{Count: len(ms)}
	for _, m := range ms {
		e.Places = append(e.Places, m.pos+1)
	}
	return e
}

func notFound(d *doc, want []string, atEnd bool) *MatchError {
	return &MatchError{Lines: want, AtEnd: atEnd, Closest: closest(d, want), FileLines: len(d.lines), Note: elisionNote(d, want)}
}

// elisionNote points out a line that stands for omitted lines ("...",
// "# ...", "// ... rest unchanged"), which models write to save tokens and
// which never matches.
func elisionNote(d *doc, want []string) string {
	for k, w := range want {
		t := trimSpace(w)
		for _, p := range [...]string{"#", "//", "/*", "--", ";"} {
			t = strings.TrimSpace(strings.TrimPrefix(t, p))
		}
		if !strings.HasPrefix(t, "...") && !strings.HasPrefix(t, "…") {
			continue
		}
		if find(d, []string{w}, 0, len(d.lines), levelTrailing, 1, false) != nil {
			continue // the file really has such a line
		}
		return fmt.Sprintf("%q (line %d above) stands for omitted lines: quote every line in full, nothing may be elided", truncate(trimSpace(w), 40), k+1)
	}
	return ""
}

// appliedAt returns the line (1-based) where the lines an edit would
// produce already are, 0 if nowhere.
func appliedAt(d *doc, produced []string) int {
	// A line or two of punctuation ("}", "end") is everywhere and proves
	// nothing.
	significant := 0
	for _, l := range produced {
		significant += len(trimSpace(l))
	}
	if significant < 12 {
		return 0
	}
	for lv := levelExact; lv < numLevels; lv++ {
		if ms := find(d, produced, 0, len(d.lines), lv, 1, false); len(ms) > 0 {
			return ms[0].pos + 1
		}
	}
	return 0
}

// reindentLen is len(m.reindent(s)), without building it.
func (m match) reindentLen(s string) int {
	if trimRight(s) == "" {
		return len(s)
	}
	switch m.lv {
	case levelIndent:
		switch {
		case m.add != "":
			return len(m.add) + len(s)
		case m.remove != "":
			if strings.HasPrefix(s, m.remove) {
				return len(s) - len(m.remove)
			}
			_, rest := splitIndent(s)
			return len(rest)
		}
	case levelWidth:
		ind, rest := splitIndent(s)
		c := max(columns(ind, m.tabW)+m.delta, 0)
		if m.tabs {
			return c/m.tabW + c%m.tabW + len(rest)
		}
		return c + len(rest)
	}
	return len(s)
}
