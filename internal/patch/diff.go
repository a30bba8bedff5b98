package patch

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change, the
// default of GNU diff -u and git.
const diffContext = 3

// Diff returns a unified diff from old to new for path, with 3 lines of
// context, in the format GNU diff -u and git diff write (without git's
// "diff --git" and "index" lines), so that patch -p1 and git apply accept it.
// A nil old stands for a file being created (--- /dev/null) and a nil new for
// one being deleted (+++ /dev/null). Diff returns "" when the contents are
// equal, which includes creating an empty file.
//
// Lines end at '\n'; a '\r' before it is part of the line, so CRLF files
// come out as git shows them.
func Diff(path string, old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	// A regex edit usually touches a few lines of a large file: the common
	// head and tail are found with fast byte comparisons, and only the lines
	// between them are diffed.
	start, endOld, endNew := commonLines(old, new)

	before := lastLines(old[:start], diffContext)
	after := firstLines(old[endOld:], diffContext)
	ops := make([]op, 0, len(before)+len(after)+16)
	for _, l := range before {
		ops = append(ops, op{' ', l})
	}
	ops = appendEdits(ops, splitLines(old[start:endOld]), splitLines(new[start:endNew]))
	for _, l := range after {
		ops = append(ops, op{' ', l})
	}
	first := bytes.Count(old[:start], []byte{'\n'}) - len(before)

	var w strings.Builder
	w.Grow(64 + len(path)*2 + (endOld-start)*2 + (endNew - start) + 300)
	oldName, newName := headerName("a/", path), headerName("b/", path)
	if old == nil {
		oldName = "/dev/null"
	}
	if new == nil {
		newName = "/dev/null"
	}
	w.WriteString("--- " + oldName + "\n+++ " + newName + "\n")
	writeHunks(&w, ops, first)
	return w.String()
}

// headerName writes a file name for a ---/+++ line as git does: quoted
// C-style when it holds a quote, backslash or control character, and
// followed by a tab when it holds a space, so that GNU patch does not take
// the rest of the name for a timestamp. UTF-8 stays readable, as git apply
// and patch accept it unquoted.
func headerName(prefix, path string) string {
	name := prefix + path
	tab := ""
	if strings.ContainsRune(name, ' ') {
		tab = "\t"
	}
	if !strings.ContainsFunc(name, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7f }) {
		return name + tab
	}
	var q strings.Builder
	q.WriteByte('"')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '"', '\\':
			q.WriteByte('\\')
			q.WriteByte(c)
		case '\t':
			q.WriteString(`\t`)
		case '\n':
			q.WriteString(`\n`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&q, `\%03o`, c)
			} else {
				q.WriteByte(c)
			}
		}
	}
	q.WriteByte('"')
	return q.String() + tab
}

// op is one line of an edit script: kind is ' ' (kept), '-' or '+'.
type op struct {
	kind byte
	line []byte // with its '\n', which only a file's last line may lack
}

// writeHunks writes ops as hunks, merging changes that are at most
// 2*diffContext unchanged lines apart as GNU diff does. first is the 0-based
// line number of ops[0] in both files (they agree up to the first change).
func writeHunks(w *strings.Builder, ops []op, first int) {
	oldLine, newLine := first, first // line numbers of ops[pos]
	pos := 0
	for {
		change := pos
		for change < len(ops) && ops[change].kind == ' ' {
			change++
		}
		if change == len(ops) {
			return
		}
		start := max(pos, change-diffContext)
		oldLine += start - pos
		newLine += start - pos

		end := change // one past the last change of this hunk
		for j := change; j < len(ops); {
			if ops[j].kind != ' ' {
				j++
				end = j
				continue
			}
			k := j
			for k < len(ops) && ops[k].kind == ' ' {
				k++
			}
			if k == len(ops) || k-j > 2*diffContext {
				break
			}
			j = k
		}
		stop := min(end+diffContext, len(ops))

		nOld, nNew := 0, 0
		for _, o := range ops[start:stop] {
			if o.kind != '+' {
				nOld++
			}
			if o.kind != '-' {
				nNew++
			}
		}
		w.WriteString("@@ -")
		w.WriteString(hunkRange(oldLine, nOld))
		w.WriteString(" +")
		w.WriteString(hunkRange(newLine, nNew))
		w.WriteString(" @@\n")
		for _, o := range ops[start:stop] {
			w.WriteByte(o.kind)
			w.Write(o.line)
			if len(o.line) == 0 || o.line[len(o.line)-1] != '\n' {
				w.WriteString("\n\\ No newline at end of file\n")
			}
		}
		oldLine += nOld
		newLine += nNew
		pos = stop
	}
}

// hunkRange formats one side of a hunk header from the 0-based number of its
// first line. An empty range names the line before it, and a count of 1 is
// left out, as GNU diff and git write them.
func hunkRange(line, n int) string {
	switch n {
	case 0:
		return strconv.Itoa(line) + ",0"
	case 1:
		return strconv.Itoa(line + 1)
	}
	return strconv.Itoa(line+1) + "," + strconv.Itoa(n)
}

// commonLines finds the longest run of whole lines that old and new share at
// their start and, after it, at their end. It returns the end of the shared
// head (the same offset in both) and the start of the shared tail in each.
func commonLines(old, new []byte) (start, endOld, endNew int) {
	p := commonPrefix(old, new)
	start = bytes.LastIndexByte(old[:p], '\n') + 1

	s := commonSuffix(old[start:], new[start:])
	endOld, endNew = len(old)-s, len(new)-s
	// The tail must start a line in both files. Inside the shared bytes a
	// '\n' is shared too, so stepping past the first one fixes both at once.
	if !lineStart(old, endOld, start) || !lineStart(new, endNew, start) {
		i := bytes.IndexByte(old[endOld:], '\n')
		if i < 0 {
			return start, len(old), len(new)
		}
		endOld += i + 1
		endNew += i + 1
	}
	return start, endOld, endNew
}

// lineStart reports whether a line of b starts at i, given that one starts at
// floor <= i.
func lineStart(b []byte, i, floor int) bool {
	return i == floor || b[i-1] == '\n'
}

// commonPrefix returns the length of the longest common prefix of a and b.
// bytes.Equal on blocks is vectorised, which makes the megabyte-sized case
// cheap; the byte loop only runs inside the first differing block.
func commonPrefix(a, b []byte) int {
	const block = 512
	n := min(len(a), len(b))
	i := 0
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix returns the length of the longest common suffix of a and b.
func commonSuffix(a, b []byte) int {
	const block = 512
	n := min(len(a), len(b))
	i := 0
	for i+block <= n && bytes.Equal(a[len(a)-i-block:len(a)-i], b[len(b)-i-block:len(b)-i]) {
		i += block
	}
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}

// splitLines cuts b after each '\n'; the last line may lack one.
func splitLines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	lines := make([][]byte, 0, bytes.Count(b, []byte{'\n'})+1)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		lines = append(lines, b[:i:i])
		b = b[i:]
	}
	return lines
}

// lastLines returns up to n whole lines at the end of b, which ends a line.
func lastLines(b []byte, n int) [][]byte {
	i := len(b)
	for k := 0; k < n && i > 0; k++ {
		i = bytes.LastIndexByte(b[:i-1], '\n') + 1
	}
	return splitLines(b[i:])
}

// firstLines returns up to n lines at the start of b.
func firstLines(b []byte, n int) [][]byte {
	i := 0
	for k := 0; k < n && i < len(b); k++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			i = len(b)
			break
		}
		i += j + 1
	}
	return splitLines(b[:i])
}
