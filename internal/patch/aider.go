package patch

import (
	"errors"
	"fmt"
	"strings"
)

// The markers of an aider edit block, as aider's "diff" edit format writes
// them; 5 to 9 of the marker character are accepted, as aider does.
const (
	aiderSearch  = "<<<<<<< SEARCH"
	aiderDivider = "======="
	aiderReplace = ">>>>>>> REPLACE"
)

// aiderAllHint is the advice for an ambiguous SEARCH part: an aider block
// has no "all".
const aiderAllHint = "add surrounding lines to the SEARCH part to make it unique"

// AiderText is a text of aider SEARCH/REPLACE edit blocks: {"text": "..."}.
// Each block is a search/replace edit of the file named on the line before
// its SEARCH marker; the blocks apply in order, all or none.
type AiderText struct {
	Text   string // as sent
	blocks []aiderBlock
}

// aiderBlock is one edit block of an aider text.
type aiderBlock struct {
	line int // of its SEARCH marker, counted from 1 in the text
	sr   SearchReplace
}

// errTooManyBlocks is parseAider's answer to a text of more blocks than
// allowed; the caller names the limit.
var errTooManyBlocks = errors.New("too many edit blocks")

// Format returns "aider".
func (*AiderText) Format() string { return "aider" }

// Targets returns the file of every block, in order.
func (e *AiderText) Targets() []string {
	out := make([]string, 0, len(e.blocks))
	for _, b := range e.blocks {
		out = append(out, b.sr.TargetFile)
	}
	return out
}

func (e *AiderText) apply(w *workset) error {
	for i, b := range e.blocks {
		if err := w.stop.stopped(); err != nil {
			return err
		}
		if err := b.apply(w); err != nil {
			return fmt.Errorf("block %d (line %d): %w", i+1, b.line, err)
		}
	}
	return nil
}

// apply applies one block as the search/replace edit it is. An empty (or
// blank) SEARCH part creates the file, or fills an empty one, as aider's
// prompts teach it; on a file with content it is refused. (Aider's code
// appends the REPLACE part there; but an agent sends it because it
// believes the file new, and appending would silently duplicate what the
// file holds or leave it half old, half new.)
func (b *aiderBlock) apply(w *workset) error {
	if strings.TrimSpace(b.sr.Search) != "" {
		err := b.sr.apply(w)
		var me *MatchError
		if errors.As(err, &me) && me.Hint != "" {
			me.Hint = aiderAllHint
		}
		return err
	}
	f, err := w.file(b.sr.TargetFile)
	if err != nil {
		return err
	}
	if !f.exists || len(f.cur) == 0 {
		return w.write(f, []byte(newFileEOL(b.sr.Replace)))
	}
	return errorf(CodeFileExists, "%s", aiderExistsMsg(b.sr.TargetFile))
}

// aiderExistsMsg is the refusal of an empty SEARCH part on a file with
// content.
func aiderExistsMsg(file string) string {
	return fmt.Sprintf("the SEARCH part is empty, which creates a file, but %s exists and is not empty; to add lines to it, put the lines they go after in SEARCH and repeat them in REPLACE", file)
}

// parseAider reads a text of aider edit blocks:
//
//	path/to/file.py
//	<<<<<<< SEARCH
//	the lines to find
//	=======
//	the lines to put in their place
//	>>>>>>> REPLACE
//
// As aider does, it takes the file name from the nearest of the three
// lines before the SEARCH marker, looking past markdown fence lines
// (```python) only; strips the decorations agents put around it (#, *,
// backticks, a trailing colon); and gives a block without a file name the
// previous block's. The first block without one gets defaultPath, the
// block's target_file. Other text (commentary, fences) is ignored. Markers
// are compared with the whitespace around them trimmed, and have 5 to 9
// marker characters.
//
// A block cut short (no ======= or >>>>>>> REPLACE), a SEARCH marker inside
// a block, a >>>>>>> REPLACE outside one, or a text of no block is refused,
// naming the line. More than maxBlocks blocks (when it is positive) is
// errTooManyBlocks.
func parseAider(text, defaultPath string, maxBlocks int) ([]aiderBlock, error) {
	rows := strings.Split(text, "\n")
	var blocks []aiderBlock
	file := defaultPath
	floor := 0 // the first row after the previous block
	for i := 0; i < len(rows); i++ {
		t := strings.TrimSpace(rows[i])
		if isAiderReplace(t) {
			return nil, fmt.Errorf("line %d: %s without a %s before it", i+1, aiderReplace, aiderSearch)
		}
		if !isAiderSearch(t) {
			continue
		}
		if maxBlocks > 0 && len(blocks) == maxBlocks {
			return nil, errTooManyBlocks
		}
		head := i
		if name := aiderFileName(rows[max(floor, head-3):head]); name != "" {
			file = name
		}
		if file == "" {
			return nil, fmt.Errorf("line %d: no file name before %s; put the file's path alone on the line before it", head+1, aiderSearch)
		}
		var search, replace strings.Builder
		for i++; i < len(rows) && !isAiderDivider(strings.TrimSpace(rows[i])); i++ {
			if err := aiderContent(rows, i, head); err != nil {
				return nil, err
			}
			search.WriteString(rows[i] + "\n")
		}
		if i == len(rows) {
			return nil, fmt.Errorf("line %d: %s without a %s line after it (was the text cut short?)", head+1, aiderSearch, aiderDivider)
		}
		divider := i
		for i++; i < len(rows) && !isAiderReplace(strings.TrimSpace(rows[i])); i++ {
			if err := aiderContent(rows, i, head); err != nil {
				return nil, err
			}
			replace.WriteString(rows[i] + "\n")
		}
		if i == len(rows) {
			return nil, fmt.Errorf("line %d: the block's %s (line %d) has no %s line after it (was the text cut short?)", head+1, aiderDivider, divider+1, aiderReplace)
		}
		blocks = append(blocks, aiderBlock{line: head + 1, sr: SearchReplace{TargetFile: cleanPath(file), Search: search.String(), Replace: replace.String(), wholeLines: true}})
		floor = i + 1
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("no edit block: want the file's path on a line, then %s, the lines to find, %s, the lines to put in their place and %s, each marker on a line of its own", aiderSearch, aiderDivider, aiderReplace)
	}
	return blocks, nil
}

// aiderContent refuses a SEARCH marker among a block's lines: the block
// opened at row head was not closed.
func aiderContent(rows []string, i, head int) error {
	if isAiderSearch(strings.TrimSpace(rows[i])) {
		return fmt.Errorf("line %d: %s inside the block opened at line %d; close that block with %s and %s first", i+1, aiderSearch, head+1, aiderDivider, aiderReplace)
	}
	return nil
}

// aiderFileName finds a block's file name in the rows before its SEARCH
// marker, nearest first, looking past fence lines only; "" if none.
func aiderFileName(rows []string) string {
	for i := len(rows) - 1; i >= 0; i-- {
		t := strings.TrimSpace(rows[i])
		if name := stripAiderFileName(t); name != "" {
			return name
		}
		if !strings.HasPrefix(t, "```") {
			return ""
		}
	}
	return ""
}

// stripAiderFileName takes the decorations off a file name line, as aider
// does: "### `a/b.py`:" is a/b.py. A fence line, a marker or "..." is no
// file name.
func stripAiderFileName(t string) string {
	if t == "..." || strings.HasPrefix(t, "```") || isAiderSearch(t) || isAiderDivider(t) || isAiderReplace(t) {
		return ""
	}
	t = strings.TrimLeft(t, "#")
	t = strings.Trim(t, " \t`*")
	t = strings.TrimRight(t, ":")
	t = strings.Trim(t, " \t`*")
	return strings.ReplaceAll(t, `\_`, "_")
}

// markerRun reports whether t starts with 5 to 9 of c, and what follows.
func markerRun(t string, c byte) (rest string, ok bool) {
	n := 0
	for n < len(t) && t[n] == c {
		n++
	}
	return t[n:], n >= 5 && n <= 9
}

func isAiderSearch(t string) bool {
	rest, ok := markerRun(t, '<')
	if !ok || rest == "" || rest[0] != ' ' && rest[0] != '\t' {
		return false
	}
	rest = strings.TrimSpace(rest)
	return rest == "SEARCH" || rest == "SEARCH>"
}

func isAiderDivider(t string) bool {
	rest, ok := markerRun(t, '=')
	return ok && rest == ""
}

func isAiderReplace(t string) bool {
	rest, ok := markerRun(t, '>')
	return ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') && strings.TrimSpace(rest) == "REPLACE"
}

// hasAiderBlock reports a text with the SEARCH marker of an aider block at
// the start of a line, for a "patch" given as a bare string: it is read as
// aider blocks, so that one cut short is refused saying where.
func hasAiderBlock(s string) bool {
	for row := range strings.SplitSeq(s, "\n") {
		if isAiderSearch(trimRight(row)) {
			return true
		}
	}
	return false
}
