package patch

import (
	"fmt"
	"regexp"
	"strings"
)

// The markers of the apply_patch format.
const (
	beginPatch = "*** Begin Patch"
	endPatch   = "*** End Patch"
	addFile    = "*** Add File:"
	deleteFile = "*** Delete File:"
	updateFile = "*** Update File:"
	moveTo     = "*** Move to:"
	endOfFile  = "*** End of File"
)

// heredocStart matches the shell wrapper agents copy from the tool's
// instructions: apply_patch <<'EOF'.
var heredocStart = regexp.MustCompile(`^(?:apply_patch\s*)?<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?\s*$`)

// parseApplyPatch reads a patch in the format of OpenAI's apply_patch tool:
//
//	*** Begin Patch
//	*** Add File: path        then the file's lines, each prefixed with +
//	*** Delete File: path
//	*** Update File: path
//	*** Move to: new/path     optional, right after Update File
//	@@ optional anchor line   hunks of ' ', '-' and '+' lines
//	*** End of File           optional, after a hunk that ends the file
//	*** End Patch
//
// As the reference implementation does, it accepts a shell heredoc
// wrapper (apply_patch <<'EOF' ... EOF) and, like every parser here, a
// markdown code fence around the text; an empty line in a hunk is a blank
// context line. A missing *** End Patch is refused: the text was probably
// cut short.
func parseApplyPatch(text string) ([]*filePatch, error) {
	rows := strings.Split(text, "\n")
	for i, r := range rows {
		rows[i] = strings.TrimSuffix(r, "\r")
	}
	lo, hi := 0, len(rows) // the rows between the wrappers
	trim := func() {
		for lo < hi && strings.TrimSpace(rows[lo]) == "" {
			lo++
		}
		for hi > lo && strings.TrimSpace(rows[hi-1]) == "" {
			hi--
		}
	}
	trim()
	if lo < hi && strings.HasPrefix(strings.TrimSpace(rows[lo]), "```") {
		lo++
		if hi > lo && strings.TrimSpace(rows[hi-1]) == "```" {
			hi--
		}
		trim()
	}
	if lo < hi {
		if m := heredocStart.FindStringSubmatch(strings.TrimSpace(rows[lo])); m != nil {
			lo++
			if hi > lo && strings.TrimSpace(rows[hi-1]) == m[1] {
				hi--
			}
			trim()
		}
	}
	if lo == hi {
		return nil, fmt.Errorf("empty patch; want %q, file sections and %q", beginPatch, endPatch)
	}
	if strings.TrimSpace(rows[lo]) != beginPatch {
		return nil, fmt.Errorf("line %d: the patch must start with %q, not %q", lo+1, beginPatch, truncate(rows[lo], 60))
	}
	if strings.TrimSpace(rows[hi-1]) != endPatch || hi-1 == lo {
		return nil, fmt.Errorf("line %d: the patch must end with %q, not %q (was it cut short?)", hi, endPatch, truncate(rows[hi-1], 60))
	}
	p := &apParser{rows: rows, i: lo + 1, end: hi - 1}
	return p.parse()
}

// apParser walks the rows of an apply_patch text between its begin and end
// markers.
type apParser struct {
	rows   []string
	i, end int
}

func (p *apParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{p.i + 1}, args...)...)
}

func (p *apParser) parse() ([]*filePatch, error) {
	var files []*filePatch
	for p.i < p.end {
		t := strings.TrimSpace(p.rows[p.i])
		var fp *filePatch
		var err error
		switch {
		case t == "":
			p.i++
			continue
		case strings.HasPrefix(t, addFile):
			fp, err = p.add(t)
		case strings.HasPrefix(t, deleteFile):
			fp, err = p.del(t)
		case strings.HasPrefix(t, updateFile):
			fp, err = p.update(t)
		case t == endPatch:
			return nil, p.errorf("%q before the end of the patch", endPatch)
		default:
			return nil, p.errorf("want %q, %q or %q, found %q", addFile+" path", updateFile+" path", deleteFile+" path", truncate(t, 60))
		}
		if err != nil {
			return nil, err
		}
		fp.style = "apply_patch"
		files = append(files, fp)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("the patch changes no file")
	}
	return files, nil
}

// pathOf reads the path after a section marker.
func (p *apParser) pathOf(t, marker string) (string, error) {
	path := strings.TrimSpace(t[len(marker):])
	if path == "" {
		return "", p.errorf("%q names no file", marker)
	}
	return cleanPath(path), nil
}

func (p *apParser) add(t string) (*filePatch, error) {
	path, err := p.pathOf(t, addFile)
	if err != nil {
		return nil, err
	}
	fp := &filePatch{op: opCreate, path: path, line: p.i + 1}
	h := &hunk{hint: -1}
	for p.i++; p.i < p.end; p.i++ {
		r := p.rows[p.i]
		switch {
		case strings.HasPrefix(r, "+"):
			h.lines = append(h.lines, hline{kind: '+', text: r[1:]})
		case strings.TrimSpace(r) == "":
			// A blank line the agent forgot to prefix, unless it only
			// separates this section from the next (trimmed below).
			h.lines = append(h.lines, hline{kind: '+', loose: true})
		case strings.HasPrefix(r, "***"):
			h.trim()
			fp.hunks = []*hunk{h}
			return fp, nil
		default:
			return nil, p.errorf("every line of an added file starts with '+'; found %q in %s", truncate(r, 60), path)
		}
	}
	h.trim()
	fp.hunks = []*hunk{h}
	return fp, nil
}

func (p *apParser) del(t string) (*filePatch, error) {
	path, err := p.pathOf(t, deleteFile)
	if err != nil {
		return nil, err
	}
	fp := &filePatch{op: opDelete, path: path, line: p.i + 1}
	p.i++
	for p.i < p.end && strings.TrimSpace(p.rows[p.i]) == "" {
		p.i++
	}
	if p.i < p.end && !strings.HasPrefix(strings.TrimSpace(p.rows[p.i]), "***") {
		return nil, p.errorf("%s takes no lines; found %q", deleteFile, truncate(p.rows[p.i], 60))
	}
	return fp, nil
}

func (p *apParser) update(t string) (*filePatch, error) {
	path, err := p.pathOf(t, updateFile)
	if err != nil {
		return nil, err
	}
	fp := &filePatch{op: opUpdate, path: path, line: p.i + 1}
	p.i++
	if p.i < p.end && strings.HasPrefix(strings.TrimSpace(p.rows[p.i]), moveTo) {
		if fp.moveTo, err = p.pathOf(strings.TrimSpace(p.rows[p.i]), moveTo); err != nil {
			return nil, err
		}
		p.i++
	}
	var h *hunk
	hunkLine := 0
	finish := func() error {
		if h == nil {
			return nil
		}
		h.trim()
		if len(h.lines) == 0 {
			return fmt.Errorf("line %d: hunk %q of %s has no lines", hunkLine, h.header, path)
		}
		fp.hunks = append(fp.hunks, h)
		h = nil
		return nil
	}
	for ; p.i < p.end; p.i++ {
		r := p.rows[p.i]
		t := strings.TrimSpace(r)
		switch {
		case strings.HasPrefix(r, "@@"):
			if h != nil && len(h.lines) > 0 {
				if err := finish(); err != nil {
					return nil, err
				}
			}
			if h == nil {
				h, hunkLine = &hunk{hint: -1}, p.i+1
			}
			if start, oldCount, _, ok := parseRange(r); ok {
				// A unified diff header where an anchor belongs: keep
				// its line number as a hint.
				h.hint = start - 1
				if oldCount == 0 {
					h.hint = start
				}
				h.header = hunkTitle(r)
				continue
			}
			if a := strings.TrimSpace(r[2:]); a != "" {
				h.anchors = append(h.anchors, a)
				if h.header == "" {
					h.header = "@@ " + truncate(a, 60)
				}
			} else if h.header == "" {
				h.header = "@@"
			}
		case trimRight(r) == endOfFile:
			if h == nil || len(h.lines) == 0 {
				return nil, p.errorf("%q without a hunk before it", endOfFile)
			}
			h.eof = true
			if err := finish(); err != nil {
				return nil, err
			}
		case strings.HasPrefix(r, "***"):
			if err := finish(); err != nil {
				return nil, err
			}
			return p.doneUpdate(fp)
		case t == "" && !strings.HasPrefix(r, " "):
			if h != nil {
				h.lines = append(h.lines, hline{kind: ' ', loose: true})
			}
		case r[0] == ' ' || r[0] == '-' || r[0] == '+':
			if h == nil {
				// The first hunk may come without an @@ line.
				h, hunkLine = &hunk{hint: -1}, p.i+1
			}
			h.lines = append(h.lines, hline{kind: r[0], text: r[1:]})
		case h != nil && p.i+1 < p.end && isHunkLine(p.rows[p.i+1]):
			// A context line that lost its space, between hunk lines;
			// taking it for context is safe, as context must match.
			h.unprefixed(r)
		default:
			return nil, p.errorf("unexpected line %q in the hunk for %s: every hunk line starts with ' ' (context), '-' (removed) or '+' (added)", truncate(r, 60), path)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return p.doneUpdate(fp)
}

func (p *apParser) doneUpdate(fp *filePatch) (*filePatch, error) {
	if len(fp.hunks) == 0 && fp.moveTo == "" {
		return nil, fmt.Errorf("line %d: %s %s has no hunks", fp.line, updateFile, fp.path)
	}
	return fp, nil
}
