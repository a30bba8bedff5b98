package patch

import (
	"bytes"
	"hash/maphash"
	"math"
	"strings"
	"unsafe"
)

// line is one line of a text file: its text without the line ending, and
// the ending itself ("\n", "\r\n", or "" for a last line without one).
type line struct {
	text, eol string
}

// doc is a text file cut into lines, the form in which hunks and
// search/replace edits change it. Line endings are kept per line, so that
// a CRLF file stays CRLF and a file with mixed endings keeps each line's.
type doc struct {
	lines []line
	// finalNL says whether the file ends with a line ending. It is kept
	// apart from the last line's eol because that line may change or
	// disappear while the file as a whole keeps (or loses) its final
	// newline.
	finalNL bool
	hasTab  int8 // cached: 0 unknown, 1 a tab occurs, -1 none
	// newEOL is the line ending of lines added to a file that has none
	// yet; "" is "\n".
	newEOL string
	// counts holds, once unique asked, how many lines have a text of each
	// hash bucket, twice over with two halves of the hash (a count-min
	// sketch: a text's count is the smaller of its two buckets); splice
	// keeps it up to date. A bucket that reaches the maximum stays there
	// (many), which keeps every count at least the true one: 16 bytes per
	// line of the file in all.
	counts [2][]uint16
	seed   maphash.Seed

	// size is the length of the content the lines make (within a few
	// bytes: a line that gains an ending counts it once bytes runs).
	// Edits may grow it up to room, and the lines up to maxLines; stop
	// is checked as they go (workset.doc sets them; newDoc leaves them
	// unbounded).
	size       int64
	room       room
	maxLines   int
	linesLimit LimitError // the error for passing maxLines
	stop       stopper
}

// lineCost is what a line of a doc may take in memory besides its text:
// the line itself, and its share of the counts unique keeps (2 × 4 bytes
// per bucket, up to 8 buckets a line).
const lineCost = int64(unsafe.Sizeof(line{})) + 64

// newDoc cuts content into lines. An empty file has no lines and counts as
// ending with a newline, so that lines added to it end with one.
func newDoc(content []byte) *doc {
	s := string(content)
	d := &doc{finalNL: len(s) == 0 || s[len(s)-1] == '\n', size: int64(len(s)), room: unlimitedRoom(), maxLines: math.MaxInt}
	d.lines = make([]line, 0, strings.Count(s, "\n")+1)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			d.lines = append(d.lines, line{text: s})
			break
		}
		l := line{text: s[:i], eol: "\n"}
		if i > 0 && s[i-1] == '\r' {
			l = line{text: s[:i-1], eol: "\r\n"}
		}
		d.lines = append(d.lines, l)
		s = s[i+1:]
	}
	return d
}

// bytes joins the lines back into file content. Every line but the last
// gets a line ending (a former last line that lines were added after has
// none yet); the last has one exactly when finalNL.
func (d *doc) bytes() []byte {
	n := 0
	for _, l := range d.lines {
		n += len(l.text) + 2
	}
	out := make([]byte, 0, n)
	eol := ""
	for i, l := range d.lines {
		out = append(out, l.text...)
		switch {
		case i == len(d.lines)-1 && !d.finalNL:
		case l.eol != "":
			out = append(out, l.eol...)
		default:
			if eol == "" {
				eol = d.dominantEOL()
			}
			out = append(out, eol...)
		}
	}
	return out
}

// dominantEOL is the line ending most lines of the file use, "\n" on a tie,
// and newEOL when no line has one.
func (d *doc) dominantEOL() string {
	crlf, lf := 0, 0
	for _, l := range d.lines {
		switch l.eol {
		case "\r\n":
			crlf++
		case "\n":
			lf++
		}
	}
	switch {
	case crlf > lf:
		return "\r\n"
	case crlf == 0 && lf == 0 && d.newEOL != "":
		return d.newEOL
	}
	return "\n"
}

// texts returns the text of lines [lo, hi).
func (d *doc) texts(lo, hi int) []string {
	out := make([]string, 0, hi-lo)
	for _, l := range d.lines[lo:hi] {
		out = append(out, l.text)
	}
	return out
}

// containsTab reports whether any line holds a tab, which decides whether
// indentation may be compared by width.
func (d *doc) containsTab() bool {
	if d.hasTab == 0 {
		d.hasTab = -1
		for _, l := range d.lines {
			if strings.IndexByte(l.text, '\t') >= 0 {
				d.hasTab = 1
				break
			}
		}
	}
	return d.hasTab > 0
}

// unique reports whether want, which matches somewhere, can match in one
// place only: one of its lines occurs once in the file. Lines are counted
// by hash bucket, so it may answer false for a unique text (other texts in
// its buckets), never true for a repeated one.
func (d *doc) unique(want []string) bool {
	if d.counts[0] == nil {
		size := 1024
		for size < 4*len(d.lines) {
			size *= 2
		}
		d.counts, d.seed = [2][]uint16{make([]uint16, size), make([]uint16, size)}, maphash.MakeSeed()
		for _, l := range d.lines {
			d.count(l.text, 1)
		}
	}
	mask := uint64(len(d.counts[0]) - 1)
	for _, w := range want {
		h := maphash.String(d.seed, w)
		if d.counts[0][h&mask] == 1 || d.counts[1][(h>>32)&mask] == 1 {
			return true
		}
	}
	return false
}

// count adds delta (1 or -1) to the buckets of s.
func (d *doc) count(s string, delta int) {
	h, mask := maphash.String(d.seed, s), uint64(len(d.counts[0])-1)
	for i, b := range [2]uint64{h & mask, (h >> 32) & mask} {
		if c := &d.counts[i][b]; *c != math.MaxUint16 {
			*c = uint16(int(*c) + delta)
		}
	}
}

// splice replaces lines [lo, hi) by repl.
func (d *doc) splice(lo, hi int, repl []line) {
	if d.counts[0] != nil {
		// Lines a hunk keeps (its context) count the same before and
		// after: skip the common ends.
		gone, come := d.lines[lo:hi], repl
		for len(gone) > 0 && len(come) > 0 && gone[0].text == come[0].text {
			gone, come = gone[1:], come[1:]
		}
		for len(gone) > 0 && len(come) > 0 && gone[len(gone)-1].text == come[len(come)-1].text {
			gone, come = gone[:len(gone)-1], come[:len(come)-1]
		}
		for _, l := range gone {
			d.count(l.text, -1)
		}
		for _, l := range come {
			d.count(l.text, 1)
		}
	}
	for _, l := range d.lines[lo:hi] {
		d.size -= int64(len(l.text) + len(l.eol))
	}
	for _, l := range repl {
		d.size += int64(len(l.text) + len(l.eol))
	}
	tail := len(d.lines) - hi
	if delta := len(repl) - (hi - lo); delta > 0 {
		d.lines = append(d.lines, make([]line, delta)...)
	}
	copy(d.lines[lo+len(repl):], d.lines[hi:hi+tail])
	copy(d.lines[lo:], repl)
	d.lines = d.lines[:lo+len(repl)+tail]
	d.hasTab = 0
}

// splitText cuts the text of a search, a replacement or an anchor into line
// texts: one trailing newline ends the last line rather than starting an
// empty one, and a '\r' before a newline belongs to the line ending.
func splitText(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	out := strings.Split(s, "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

// convertEOL rewrites every line ending of s ("\n" or "\r\n") as eol.
func convertEOL(s, eol string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if eol == "\n" {
		return s
	}
	return strings.ReplaceAll(s, "\n", eol)
}

// isSpace is the whitespace that matching ignores at the ends of lines.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'
}

func trimRight(s string) string {
	i := len(s)
	for i > 0 && isSpace(s[i-1]) {
		i--
	}
	return s[:i]
}

// splitIndent cuts a line into its leading whitespace and the rest.
func splitIndent(s string) (indent, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func trimSpace(s string) string {
	_, rest := splitIndent(trimRight(s))
	return rest
}

// newFileEOL gives the text of a file a patch creates its line endings: CRLF
// when every line of the text ends with "\r\n", LF otherwise, so that a
// new file never mixes them.
func newFileEOL(s string) string {
	if n := strings.Count(s, "\n"); n > 0 && strings.Count(s, "\r\n") == n {
		return s
	}
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// fileEOL rewrites the line endings of s, text a patch inserts into the file
// content (a regex replacement), to the file's usual ending: the line
// endings of a patch never reach a file.
func fileEOL(s string, content []byte) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	crlf := bytes.Count(content, []byte("\r\n"))
	eol := "\n"
	if crlf > 0 && crlf*2 > bytes.Count(content, []byte("\n")) {
		eol = "\r\n"
	}
	return convertEOL(s, eol)
}
