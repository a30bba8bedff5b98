package patch

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// diffSection is what the parser gathers about one file of a diff before
// deciding what the diff does to it.
type diffSection struct {
	line               int // 1-based line of the patch text where it starts
	git                bool
	gitOld, gitNew     string // names on the "diff --git" line
	oldName, newName   string // names on the ---/+++ lines ("/dev/null" for none)
	header             bool   // the ---/+++ lines were seen
	renameFrom         string
	renameTo           string
	newFile, deleteIt  bool
	hunks              []*hunk
	defaultTargetFile  bool // made up from target_file for hunks without headers
	sawMetadataForFile bool
	// git's file modes, as written ("100755"): of a new file, and the old
	// and new ones of a mode change.
	newFileMode, oldMode, newMode string
}

const devNull = "/dev/null"

// cleanPath tidies a path taken from a patch text ("./a//b" is "a/b"). It
// makes no path safe: the workspace refuses those that leave it.
func cleanPath(p string) string {
	if p == "" || p == devNull {
		return p
	}
	return path.Clean(p)
}

// parseUnifiedDiff reads a unified diff, git-style or plain, of one or
// more files. Lines outside file headers and hunks (commentary, markdown
// code fences, "index" and mode lines) are ignored. defaultPath, the
// block's target_file, names the file of hunks that come without ---/+++
// headers. Errors name the line of the text they are about.
func parseUnifiedDiff(text, defaultPath string) ([]*filePatch, error) {
	rows := strings.Split(text, "\n")
	// ended: the last row has its "\n" too.
	ended := rows[len(rows)-1] == ""
	if ended {
		rows = rows[:len(rows)-1]
	}
	var secs []*diffSection
	var cur *diffSection
	for i := 0; i < len(rows); {
		l := strings.TrimSuffix(rows[i], "\r")
		switch {
		case strings.HasPrefix(l, "diff --git "):
			cur = &diffSection{line: i + 1, git: true}
			cur.gitOld, cur.gitNew = parseGitLine(l[len("diff --git "):])
			secs = append(secs, cur)
			i++
		case strings.HasPrefix(l, "--- ") && i+1 < len(rows) && strings.HasPrefix(rows[i+1], "+++ "),
			strings.HasPrefix(l, "+++ "):
			if cur == nil || !cur.git || cur.header || len(cur.hunks) > 0 {
				cur = &diffSection{line: i + 1}
				secs = append(secs, cur)
			}
			cur.header = true
			if strings.HasPrefix(l, "+++ ") {
				// An agent's diff without its --- line.
				cur.newName = parseName(l[4:])
				cur.oldName = cur.newName
				i++
				break
			}
			cur.oldName = parseName(l[4:])
			cur.newName = parseName(strings.TrimSuffix(rows[i+1], "\r")[4:])
			i += 2
		case strings.HasPrefix(l, "@@"):
			if cur == nil {
				if defaultPath == "" {
					return nil, fmt.Errorf("line %d: hunk before any file header; start the diff with --- a/path and +++ b/path lines, or set target_file", i+1)
				}
				cur = &diffSection{line: i + 1, header: true, oldName: defaultPath, newName: defaultPath, defaultTargetFile: true}
				secs = append(secs, cur)
			}
			h, next := parseHunk(rows, i, ended)
			if len(h.lines) == 0 {
				return nil, fmt.Errorf("line %d: hunk %q has no lines", i+1, h.header)
			}
			if err := strayChanges(rows, next); err != nil {
				return nil, err
			}
			cur.hunks = append(cur.hunks, h)
			i = next
		case strings.HasPrefix(l, "Binary files ") || l == "GIT binary patch":
			return nil, fmt.Errorf("line %d: binary patches are not supported", i+1)
		case cur != nil && cur.git && !cur.header && len(cur.hunks) == 0:
			if err := cur.metadata(l, i+1); err != nil {
				return nil, err
			}
			i++
		default:
			i++ // commentary, fences, "index", "Index:", "===="
		}
	}
	var files []*filePatch
	for _, s := range secs {
		fp, err := s.resolve()
		if err != nil {
			return nil, err
		}
		if fp != nil {
			files = append(files, fp)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no file changes found; a diff needs --- a/path and +++ b/path lines followed by @@ hunks")
	}
	return files, nil
}

// metadata reads one of git's extended header lines.
func (s *diffSection) metadata(l string, n int) error {
	switch {
	case strings.HasPrefix(l, "new file mode "):
		s.newFile, s.sawMetadataForFile = true, true
		s.newFileMode = strings.TrimSpace(l[len("new file mode "):])
	case strings.HasPrefix(l, "old mode "):
		s.oldMode = strings.TrimSpace(l[len("old mode "):])
	case strings.HasPrefix(l, "new mode "):
		s.newMode = strings.TrimSpace(l[len("new mode "):])
	case strings.HasPrefix(l, "deleted file mode "):
		s.deleteIt, s.sawMetadataForFile = true, true
	case strings.HasPrefix(l, "rename from "):
		s.renameFrom = parseName(l[len("rename from "):])
	case strings.HasPrefix(l, "rename to "):
		s.renameTo = parseName(l[len("rename to "):])
	case strings.HasPrefix(l, "copy from "), strings.HasPrefix(l, "copy to "):
		return fmt.Errorf("line %d: copies are not supported; send the copy as a new file (--- /dev/null)", n)
	}
	// "index", "similarity index" and the like say nothing the workspace
	// needs.
	return nil
}

// resolve decides what a section does; nil for a section that says nothing
// (a lone "diff --git" line, say).
func (s *diffSection) resolve() (*filePatch, error) {
	oldName, newName := s.oldName, s.newName
	if !s.header {
		oldName, newName = s.gitOld, s.gitNew
		if s.newFile {
			oldName = devNull
		}
		if s.deleteIt {
			newName = devNull
		}
	}
	if !s.defaultTargetFile {
		oldName, newName = stripPrefixes(oldName, newName)
	}
	renamed := s.renameFrom != "" || s.renameTo != ""
	if s.renameFrom != "" {
		oldName = s.renameFrom
	}
	if s.renameTo != "" {
		newName = s.renameTo
	}
	if s.newFile {
		oldName = devNull
	}
	if s.deleteIt {
		newName = devNull
	}
	modeChange := s.oldMode != "" && s.newMode != "" && s.oldMode != s.newMode
	if s.git && !s.header && len(s.hunks) == 0 && !renamed && !s.sawMetadataForFile {
		if modeChange {
			// patchd keeps the mode of an existing file (see README):
			// say so rather than that the diff changes nothing.
			name, _ := stripPrefixes(s.gitOld, s.gitNew)
			chmod := "make it executable yourself (chmod +x " + name + ")"
			if !isExecMode(s.newMode) {
				chmod = "change it yourself (chmod -x " + name + ")"
			}
			return nil, fmt.Errorf("the diff only changes the mode of %s (%s to %s), and patchd does not change the mode of an existing file: %s", name, s.oldMode, s.newMode, chmod)
		}
		return nil, nil
	}
	if !s.git && len(s.hunks) == 0 {
		return nil, fmt.Errorf("line %d: the diff of %s has no hunks (@@ lines)", s.line, newName)
	}
	fp := &filePatch{hunks: s.hunks, line: s.line, style: "diff", crlf: addsCRLF(s.hunks)}
	switch {
	case oldName == devNull && newName == devNull, oldName == "" && newName == "":
		return nil, fmt.Errorf("line %d: the diff names no file", s.line)
	case oldName == devNull:
		fp.op, fp.path = opCreate, newName
		if s.newFileMode != "" {
			mode, err := createMode(s.newFileMode)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", s.line, newName, err)
			}
			fp.mode = mode
		}
		for _, h := range s.hunks {
			if h.count(' ')+h.count('-') > 0 {
				return nil, fmt.Errorf("line %d: the diff creates %s (--- /dev/null) but hunk %q has context or removed lines", s.line, newName, h.header)
			}
		}
	case newName == devNull:
		fp.op, fp.path = opDelete, oldName
		for _, h := range s.hunks {
			if h.count('+') > 0 {
				return nil, fmt.Errorf("line %d: the diff deletes %s (+++ /dev/null) but hunk %q adds lines", s.line, oldName, h.header)
			}
		}
	case oldName == newName:
		fp.path = oldName
	case renamed || s.git:
		fp.path, fp.moveTo = oldName, newName
	default:
		// A plain diff of "file.orig" against "file": change the new
		// name's file, or the old name's if only that one exists.
		fp.path, fp.altPath = newName, oldName
	}
	if fp.path == "" {
		return nil, fmt.Errorf("line %d: the diff names no file", s.line)
	}
	if modeChange && fp.op == opUpdate {
		fp.modeNote = fmt.Sprintf("mode change (%s to %s) not applied: patchd keeps the mode of an existing file", s.oldMode, s.newMode)
	}
	fp.path, fp.moveTo, fp.altPath = cleanPath(fp.path), cleanPath(fp.moveTo), cleanPath(fp.altPath)
	return fp, nil
}

// createMode is the permission of a file created with git's mode m: 0755
// for an executable file, 0644 for another; never a setuid, setgid or
// sticky bit. Symbolic links (120000) and submodules (160000) are refused:
// the workspace holds regular files only.
func createMode(m string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(m, 8, 32)
	if err != nil || v&0o170000 != 0o100000 {
		return 0, fmt.Errorf("new file mode %s is not a regular file's; a patch creates regular files only (no symbolic links or submodules)", m)
	}
	if isExecMode(m) {
		return 0o755, nil
	}
	return 0o644, nil
}

// isExecMode reports whether git's mode m has an executable bit.
func isExecMode(m string) bool {
	v, err := strconv.ParseUint(m, 8, 32)
	return err == nil && v&0o111 != 0
}

// addsCRLF reports whether every line the hunks add ends with "\r\n" in
// the diff (the last line of a file without a final newline has no ending
// to judge by).
func addsCRLF(hunks []*hunk) bool {
	n := 0
	for _, h := range hunks {
		for k, l := range h.lines {
			if l.kind != '+' || (h.newNoNL && k == len(h.lines)-1) {
				continue
			}
			if !l.cr {
				return false
			}
			n++
		}
	}
	return n > 0
}

// stripPrefixes removes git's a/ and b/ from a pair of names, when both
// carry them (or the other is /dev/null).
func stripPrefixes(oldName, newName string) (string, string) {
	okOld := strings.HasPrefix(oldName, "a/") || oldName == devNull
	okNew := strings.HasPrefix(newName, "b/") || newName == devNull
	if !okOld || !okNew || oldName == newName {
		return oldName, newName
	}
	if oldName != devNull {
		oldName = oldName[2:]
	}
	if newName != devNull {
		newName = newName[2:]
	}
	return oldName, newName
}

// parseName reads a file name from a ---/+++ or rename line: C-quoted as
// git writes unusual names, or up to a tab (which precedes a timestamp in
// diff -u output, or follows a name with spaces in git's).
func parseName(s string) string {
	s = strings.TrimSuffix(s, "\r")
	if strings.HasPrefix(s, `"`) {
		if name, _, ok := unquoteC(s); ok {
			return name
		}
	}
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// parseGitLine reads the two names of a "diff --git a/x b/y" line.
func parseGitLine(s string) (oldName, newName string) {
	s = strings.TrimSuffix(s, "\r")
	if strings.HasPrefix(s, `"`) {
		if name, rest, ok := unquoteC(s); ok {
			return name, parseName(strings.TrimPrefix(rest, " "))
		}
	}
	// Usually both names are the same: "a/P b/P".
	if n := len(s); n%2 == 1 {
		half := n / 2
		if s[half] == ' ' && strings.HasPrefix(s, "a/") && strings.HasPrefix(s[half+1:], "b/") && s[2:half] == s[half+3:] {
			return s[:half], s[half+1:]
		}
	}
	if i := strings.LastIndex(s, " b/"); i >= 0 {
		return s[:i], s[i+1:]
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, s
}

// unquoteC reads a C-style quoted string at the start of s, as git quotes
// names, and returns it with the rest of s.
func unquoteC(s string) (name, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			i++
			if i >= len(s) {
				return "", "", false
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '0', '1', '2', '3':
				if i+2 < len(s) {
					if v, err := strconv.ParseUint(s[i:i+3], 8, 8); err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				return "", "", false
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// parseHunk reads the hunk whose @@ header is rows[i]. It returns the hunk
// and the index of the first row after it. ended says that the last row
// ended with "\n" in the text.
//
// The header's counts are only hints, because agents miscount: the body
// runs while rows look like hunk lines. An empty row is a blank context
// line (editors strip the space of one), except at the ends of the hunk. A
// row without a prefix ends the hunk once the counts are reached; before
// that (or without counts) it is taken for a context line that lost its
// space when a hunk line follows it. A "--- " row followed by "+++ " is the
// next file's header once the counts are reached.
func parseHunk(rows []string, i int, ended bool) (h *hunk, next int) {
	hdr := strings.TrimSuffix(rows[i], "\r")
	h = &hunk{header: hunkTitle(hdr), hint: -1}
	oldStart, oldCount, newCount, counted := parseRange(hdr)
	if counted {
		h.hint = oldStart - 1
		if oldCount == 0 {
			h.hint = oldStart
		}
	}
	seenOld, seenNew := 0, 0
	reached := func() bool { return counted && seenOld >= oldCount && seenNew >= newCount }
	var marks []int // indexes of lines followed by "\ No newline at end of file"
	j := i + 1
body:
	for ; j < len(rows); j++ {
		raw := rows[j]
		l := strings.TrimSuffix(raw, "\r")
		lcr := len(l) < len(raw)
		if l == "" {
			h.lines = append(h.lines, hline{kind: ' ', cr: lcr, loose: true})
			seenOld++
			seenNew++
			continue
		}
		switch l[0] {
		case ' ', '-', '+':
			if strings.HasPrefix(l, "--- ") && j+1 < len(rows) && strings.HasPrefix(rows[j+1], "+++ ") && (!counted || reached()) {
				break body
			}
			h.lines = append(h.lines, hline{kind: l[0], text: l[1:], cr: lcr})
			if l[0] != '+' {
				seenOld++
			}
			if l[0] != '-' {
				seenNew++
			}
		case '\\':
			if n := len(h.lines); n > 0 {
				marks = append(marks, n-1)
				// A line without a newline has no "\r\n" either: a '\r'
				// before the row's end is the line's own last byte, as
				// git writes a file that ends in "\r" without "\n"; unless
				// the marker row itself ends with "\r\n" (or with
				// nothing), when the diff as a whole went through a CRLF
				// conversion and the '\r' is the transport's.
				last := &h.lines[n-1]
				if last.cr && !strings.HasSuffix(raw, "\r") && (j+1 < len(rows) || ended) {
					last.text += "\r"
				}
				last.cr = false
			}
		default:
			if hunkEnds(l) {
				break body
			}
			if !reached() && j+1 < len(rows) && isHunkLine(rows[j+1]) {
				h.unprefixed(l)
				h.lines[len(h.lines)-1].cr = lcr
				seenOld++
				seenNew++
				continue
			}
			break body
		}
	}
	h.trimMarked(&marks)
	return h, j
}

// strayChanges refuses change lines after text that ended a hunk (at rows[i])
// and before the next header: they were meant for the hunk, and applying it
// without them would quietly do half the change.
func strayChanges(rows []string, i int) error {
	if i >= len(rows) || rows[i] == "" || isHunkLine(rows[i]) || hunkEnds(strings.TrimSuffix(rows[i], "\r")) {
		return nil // the hunk ended at the end, a header or a fence
	}
	for j := i + 1; j < len(rows); j++ {
		l := strings.TrimSuffix(rows[j], "\r")
		switch {
		case hunkEnds(l), strings.HasPrefix(l, "--- "), strings.HasPrefix(l, "+++ "):
			return nil
		case strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+"):
			return fmt.Errorf("line %d: %q looks like a change, but the hunk above ended at line %d, %q, which has no ' ', '-' or '+' prefix; fix that line, or put text after the diff in a separate field", j+1, truncate(l, 60), i+1, truncate(rows[i], 60))
		}
	}
	return nil
}

// trimMarked drops the loose blank lines at the hunk's ends and then sets
// the no-newline flags from the marks that follow its last old and new
// lines.
func (h *hunk) trimMarked(marks *[]int) {
	lead := 0
	for lead < len(h.lines) && h.lines[lead].loose {
		lead++
	}
	h.trim()
	lastOld, lastNew := -1, -1
	for k, l := range h.lines {
		if l.kind != '+' {
			lastOld = k
		}
		if l.kind != '-' {
			lastNew = k
		}
	}
	for _, m := range *marks {
		m -= lead
		if m >= 0 && m == lastOld {
			h.oldNoNL = true
		}
		if m >= 0 && m == lastNew {
			h.newNoNL = true
		}
	}
}

// hunkEnds reports a row that cannot belong to a hunk body.
func hunkEnds(l string) bool {
	for _, p := range [...]string{"@@", "diff ", "```", "Index: ", "====", "*** "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func isHunkLine(raw string) bool {
	return raw != "" && (raw[0] == ' ' || raw[0] == '-' || raw[0] == '+')
}

// hunkTitle is the @@ header without the section text after it.
func hunkTitle(hdr string) string {
	if i := strings.Index(hdr[min(2, len(hdr)):], "@@"); i >= 0 {
		end := min(2, len(hdr)) + i + 2
		for end < len(hdr) && hdr[end] == '@' {
			end++
		}
		return hdr[:end]
	}
	return truncate(hdr, 60)
}

// parseRange reads "@@ -l[,s] +l[,s] @@"; ok is false when the header has
// no (valid) numbers, as in the "@@ ... @@" agents sometimes write.
func parseRange(hdr string) (oldStart, oldCount, newCount int, ok bool) {
	s := strings.TrimLeft(hdr, "@")
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "-") {
		return 0, 0, 0, false
	}
	oldStart, oldCount, s, ok = parseSpan(s[1:])
	if !ok || !strings.HasPrefix(s, " +") {
		return 0, 0, 0, false
	}
	_, newCount, s, ok = parseSpan(s[2:])
	if !ok || !strings.HasPrefix(strings.TrimLeft(s, " "), "@@") {
		return 0, 0, 0, false
	}
	return oldStart, oldCount, newCount, true
}

// parseSpan reads "l" or "l,s" (s defaults to 1).
func parseSpan(s string) (start, count int, rest string, ok bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return 0, 0, s, false
	}
	start, _ = strconv.Atoi(s[:n])
	s, count = s[n:], 1
	if strings.HasPrefix(s, ",") {
		m := 1
		for m < len(s) && s[m] >= '0' && s[m] <= '9' {
			m++
		}
		if m == 1 || m > 10 {
			return 0, 0, s, false
		}
		count, _ = strconv.Atoi(s[1:m])
		s = s[m:]
	}
	return start, count, s, true
}
