package patch

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"syscall"
)

// hline is one line of a hunk: kind ' ' (context), '-' (removed) or '+'
// (added), and its text without the line ending.
type hline struct {
	kind byte
	text string
	// cr: the line ended with "\r\n" in the patch.
	cr bool
	// loose: the line was empty in the patch, without the ' ' of a context
	// line; such lines are taken for blank context lines inside a hunk
	// and dropped at its ends, where they are more likely separators.
	loose bool
}

// hunk is one change to a file, in the unified diff or apply_patch form:
// the lines around it (context), the lines it removes and those it adds.
type hunk struct {
	header string // the @@ line, for messages ("" for none)
	// hint is the index of the hunk's first old line according to its
	// header's line numbers, -1 when it has none. It only says where to
	// look first.
	hint    int
	anchors []string // apply_patch "@@ text" lines, in order
	eof     bool     // apply_patch "*** End of File": the old lines end the file
	lines   []hline
	// "\ No newline at end of file" after the last old or new line.
	oldNoNL, newNoNL bool
	// repairs say what the parser had to guess, for the change's notes.
	repairs []string
}

// unprefixed records a row that lacked its ' ' and was taken for a
// context line.
func (h *hunk) unprefixed(row string) {
	h.lines = append(h.lines, hline{kind: ' ', text: row})
	h.repairs = append(h.repairs, fmt.Sprintf("line %q had no ' ' prefix and was taken as context", truncate(row, 60)))
}

func (h *hunk) old() []string {
	var out []string
	for _, l := range h.lines {
		if l.kind != '+' {
			out = append(out, l.text)
		}
	}
	return out
}

// produced returns the lines the hunk leaves: context and added lines.
func (h *hunk) produced() []string {
	var out []string
	for _, l := range h.lines {
		if l.kind != '-' {
			out = append(out, l.text)
		}
	}
	return out
}

func (h *hunk) count(kind byte) int {
	n := 0
	for _, l := range h.lines {
		if l.kind == kind {
			n++
		}
	}
	return n
}

// trim drops loose blank lines at both ends of the hunk, and moves its
// line number hint past those it dropped at the start.
func (h *hunk) trim() {
	for len(h.lines) > 0 && h.lines[0].loose {
		h.lines = h.lines[1:]
		if h.hint >= 0 {
			h.hint++
		}
	}
	for len(h.lines) > 0 && h.lines[len(h.lines)-1].loose {
		h.lines = h.lines[:len(h.lines)-1]
	}
}

// apply replaces the hunk's old lines, found at m, by its new lines and
// returns the number of new lines. Context lines keep the file's text (and
// its trailing whitespace); added lines are re-indented as m says and end
// like their neighbours in the file: the line endings of the patch text
// never reach the file, since they are as often the transport's (a CRLF
// clipboard, a Windows agent) as the author's. In a file that has no line
// ending yet (new, empty, or one line) they end with d.newEOL.
//
// It refuses (before allocating them) new lines that would take d past
// its room or its maxLines, and stops once d's stopper says so.
func (h *hunk) apply(d *doc, m match) (int, error) {
	pos := m.pos
	end := pos + len(h.lines) - h.count('+')
	touchesEnd := end == len(d.lines)
	if err := d.stop.stopped(); err != nil {
		return 0, err
	}
	// Added lines can be much longer than in the patch: re-indented to a
	// file's (maybe huge) indentation.
	size, lines, k := d.size, len(d.lines), pos
	for _, hl := range h.lines {
		switch hl.kind {
		case ' ':
			k++
		case '-':
			size -= int64(len(d.lines[k].text) + len(d.lines[k].eol))
			lines--
			k++
		case '+':
			size += int64(m.reindentLen(hl.text)) + 2
			lines++
		}
	}
	if err := d.room.over(size); err != nil {
		return 0, err
	}
	if lines > d.maxLines {
		e := d.linesLimit
		return 0, &e
	}
	repl := make([]line, 0, len(h.lines)-h.count('-'))
	k, last := pos, ""
	for _, hl := range h.lines {
		switch hl.kind {
		case ' ', '-':
			if d.lines[k].eol != "" {
				last = d.lines[k].eol
			}
			if hl.kind == ' ' {
				repl = append(repl, d.lines[k])
			}
			k++
		case '+':
			repl = append(repl, line{text: m.reindent(hl.text), eol: insertedEOL(d, last, k, pos, end)})
		}
	}
	d.splice(pos, end, repl)
	// The final newline changes only when the hunk says so: its old side
	// ends without one and its new side with one, or the reverse. A marker
	// on both sides (or a spurious one on the side of a file that has a
	// final newline) says nothing about the change.
	if touchesEnd && h.oldNoNL != h.newNoNL {
		d.finalNL = h.oldNoNL
	}
	return len(repl), nil
}

// insertedEOL chooses the line ending of an added line: that of the nearest
// file line of the hunk (before it, then after it), else the line before
// the hunk's, else the file's usual one.
func insertedEOL(d *doc, last string, k, pos, end int) string {
	if last != "" {
		return last
	}
	for j := k; j < end; j++ {
		if d.lines[j].eol != "" {
			return d.lines[j].eol
		}
	}
	if pos > 0 && d.lines[pos-1].eol != "" {
		return d.lines[pos-1].eol
	}
	return d.dominantEOL()
}

// fileOp is what a filePatch does to its file.
type fileOp int

const (
	opUpdate fileOp = iota // change the file (and move it when moveTo is set)
	opCreate               // create it from the hunks' added lines
	opDelete               // delete it (after checking the hunks' removed lines, if any)
)

// filePatch is the part of a diff or an apply_patch text about one file.
type filePatch struct {
	op      fileOp
	path    string // the file read, or created
	moveTo  string // opUpdate: where the result goes when it is renamed
	altPath string // plain diffs naming two files: the other name, used when path does not exist
	hunks   []*hunk
	// crlf: every line the diff adds ends with "\r\n", so a file without
	// line endings of its own to follow (a new or empty one) gets CRLF,
	// as git apply writes what the diff says; otherwise LF.
	crlf bool
	mode fs.FileMode // opCreate: the new file's permission, 0 for the default
	// modeNote says that the diff changes the mode of the file, which
	// patchd does not do to an existing file.
	modeNote string
	line     int    // where the file's part starts in the patch text, for messages
	style    string // "diff" or "apply_patch"
}

// targets lists the workspace paths the file patch touches.
func (fp *filePatch) targets() []string {
	out := []string{fp.path}
	if fp.altPath != "" && fp.altPath != devNull {
		out = append(out, fp.altPath)
	}
	if fp.moveTo != "" {
		out = append(out, fp.moveTo)
	}
	return out
}

// apply runs the file patch on the workset.
func (fp *filePatch) apply(w *workset) error {
	f, err := w.file(fp.path)
	if err != nil {
		if fp.op == opDelete && errors.Is(err, syscall.EISDIR) {
			return errorf(CodePathNotRegular, "cannot delete %s: it is a directory, and a patch deletes files one by one: delete each file under it", fp.path)
		}
		return err
	}
	if fp.modeNote != "" {
		f.note(fp.modeNote)
	}
	switch fp.op {
	case opCreate:
		d, err := fp.newDoc(w, f, nil)
		if err != nil {
			return err
		}
		for _, h := range fp.hunks {
			if _, err := h.apply(d, match{pos: len(d.lines)}); err != nil {
				return err
			}
		}
		content := d.bytes()
		if f.exists && len(f.cur) > 0 && !bytes.Equal(f.cur, content) {
			return errorf(CodeFileExists, "cannot create %s: it already exists", fp.path)
		}
		if err := w.write(f, content); err != nil {
			return err
		}
		if fp.mode != 0 {
			f.mode = fp.mode
		}
		return nil
	case opDelete:
		if !f.exists {
			return errorf(CodeFileNotFound, "cannot delete %s: it does not exist", fp.path)
		}
		if len(fp.hunks) > 0 {
			d, err := fp.newDoc(w, f, f.cur)
			if err != nil {
				return err
			}
			if err := fp.applyHunks(d, f); err != nil {
				return err
			}
			if len(d.lines) > 0 {
				return errorf(CodeHunkFailed, "cannot delete %s: the diff removes only some of its lines (%d remain); remove them all or use *** Delete File", fp.path, len(d.lines))
			}
		}
		w.remove(f)
		return nil
	}
	if !f.exists && fp.altPath != "" {
		g, err := w.file(fp.altPath)
		if err != nil {
			return err
		}
		if g.exists {
			f = g
		}
	}
	if !f.exists {
		return errorf(CodeFileNotFound, "cannot update %s: it does not exist", f.path)
	}
	d, err := fp.newDoc(w, f, f.cur)
	if err != nil {
		return err
	}
	if err := fp.applyHunks(d, f); err != nil {
		return err
	}
	content := d.bytes()
	if fp.moveTo == "" || w.key(fp.moveTo) == w.key(f.path) {
		return w.write(f, content)
	}
	g, err := w.file(fp.moveTo)
	if err != nil {
		return err
	}
	if g.exists {
		return errorf(CodeFileExists, "cannot move %s to %s: %s already exists", f.path, fp.moveTo, fp.moveTo)
	}
	from := f.path
	if !f.existed && f.renamedFrom != "" {
		from = f.renamedFrom // moved twice: name where it came from
	}
	w.remove(f)
	if err := w.write(g, content); err != nil {
		return err
	}
	g.renamedFrom = from
	return nil
}

// newDoc cuts content into lines, with the line ending the patch's added
// lines get when the file has none of its own.
func (fp *filePatch) newDoc(w *workset, f *fileState, content []byte) (*doc, error) {
	d, err := w.doc(f, content)
	if err != nil {
		return nil, err
	}
	if fp.crlf {
		d.newEOL = "\r\n"
	}
	return d, nil
}

// applyHunks applies the hunks in order to d, the content of f.
func (fp *filePatch) applyHunks(d *doc, f *fileState) error {
	if fp.style == "apply_patch" {
		return fp.applyPatchHunks(d, f)
	}
	// shift is how far the previous hunk landed from where its line
	// numbers put it, counting the lines it added or removed, so that a
	// diff whose numbers are all off by the same amount (an agent that
	// miscounted once) is placed as surely as an exact one.
	//
	// cursor is where the previous hunk ended: hunks come in the order of
	// the file, which tells apart the places of a text that recurs.
	shift, cursor := 0, 0
	for i, h := range fp.hunks {
		what := fmt.Sprintf("diff hunk %d (%s)", i+1, h.header)
		old := h.old()
		expected := -1
		if h.hint >= 0 {
			expected = max(h.hint+shift, 0)
		}
		var m match
		if len(old) == 0 {
			switch {
			case expected < 0:
				return errorf(CodeHunkFailed, "%s of %s only adds lines and has no line numbers to place them; add context lines", what, f.path)
			case expected > len(d.lines):
				return errorf(CodeHunkFailed, "%s of %s adds lines after line %d, but the file has %d lines; add context lines", what, f.path, expected, len(d.lines))
			case expected < len(d.lines):
				// Nothing in the hunk confirms the place; git apply takes a
				// hunk without trailing context for one that ends the file
				// and refuses it elsewhere, and so does patchd.
				return errorf(CodeHunkFailed, "%s of %s only adds lines, with no context lines to place them, at line %d of a file of %d lines; like git apply, patchd places such a hunk only at the end of a file (or in an empty one): %s", what, f.path, expected+1, len(d.lines), addContext)
			}
			m = match{pos: expected}
		} else {
			var me *MatchError
			if m, me = locate(d, old, where{from: cursor, prev: i, expected: expected}); me != nil {
				me.File, me.What = f.path, what
				me.Hint = "add context lines to make it unique"
				if me.Count == 0 && h.count('-')+h.count('+') > 0 {
					me.AppliedAt = appliedAt(d, h.produced())
				}
				return me
			}
		}
		for _, r := range h.repairs {
			f.note(what + ": " + r)
		}
		if s := m.tieNote(what); s != "" {
			f.note(s)
		} else if expected >= 0 && m.pos != expected {
			f.note(fmt.Sprintf("%s applied at line %d, not at line %d as its line numbers say", what, m.pos+1, expected+1))
		}
		if s := m.describe(); s != "" {
			f.note(what + " matched " + s)
		}
		n, err := h.apply(d, m)
		if err != nil {
			return err
		}
		cursor = m.pos + n
		if h.hint >= 0 {
			shift = m.pos + n - (h.hint + len(h.lines) - h.count('+'))
		}
	}
	return nil
}

// applyPatchHunks applies apply_patch hunks: each is looked for after the
// previous one (then anywhere), after its @@ anchor lines if it has any,
// and at the end of the file if it is marked *** End of File.
func (fp *filePatch) applyPatchHunks(d *doc, f *fileState) error {
	cursor, shift := 0, 0
	for i, h := range fp.hunks {
		what := "apply_patch hunk " + strconv.Itoa(i+1)
		if h.header != "" && h.header != "@@" {
			what += " (" + h.header + ")"
		}
		from, anchored := cursor, false
		for _, a := range h.anchors {
			m, me := locate(d, []string{a}, where{from: from, expected: -1})
			if me != nil {
				me.File, me.What = f.path, fmt.Sprintf("@@ anchor line of %s", what)
				me.Hint = "use a more specific anchor (a class or function line first, then the line inside it, each on its own @@ line)"
				return me
			}
			from, anchored = m.pos+1, true
		}
		old := h.old()
		expected := -1
		if h.hint >= 0 {
			expected = max(h.hint+shift, 0)
		}
		var m match
		switch {
		case len(old) == 0 && !h.eof && (anchored || (expected >= 0 && expected < len(d.lines))):
			// Codex's apply_patch adds such lines at the end of the file
			// whatever the @@ line says; placing them elsewhere would
			// differ from it silently.
			place := "after the @@ line"
			if !anchored {
				place = fmt.Sprintf("at line %d", expected+1)
			}
			return errorf(CodeHunkFailed, "%s of %s only adds lines, with no context lines to place them; Codex's apply_patch would add them at the end of the file, not %s: %s", what, f.path, place, addContext)
		case len(old) == 0:
			m = match{pos: len(d.lines)}
		default:
			var me *MatchError
			if m, me = locate(d, old, where{from: from, prev: i, expected: expected, first: anchored, atEnd: h.eof}); me != nil {
				me.File, me.What = f.path, what
				me.Hint = "add context lines or an @@ line naming the enclosing function or class to make it unique"
				if me.Count == 0 && h.count('-')+h.count('+') > 0 {
					me.AppliedAt = appliedAt(d, h.produced())
				}
				return me
			}
		}
		for _, r := range h.repairs {
			f.note(what + ": " + r)
		}
		if s := m.tieNote(what); s != "" {
			f.note(s)
		}
		if s := m.describe(); s != "" {
			f.note(what + " matched " + s)
		}
		n, err := h.apply(d, m)
		if err != nil {
			return err
		}
		cursor = m.pos + n
		if h.hint >= 0 {
			shift = m.pos + n - (h.hint + len(old))
		}
	}
	if !d.finalNL && len(d.lines) > 0 {
		// Codex, the format's reference, ends every file it updates with
		// a newline, and models trained on it expect that.
		d.finalNL = true
		f.note(fmt.Sprintf("apply_patch: %s had no newline at its end; it has one now, as Codex's apply_patch ends every file it updates", f.path))
	}
	return nil
}

// addContext is the advice for a hunk that only adds lines.
const addContext = "add context lines (unchanged lines around the insertion, prefixed with a space)"
