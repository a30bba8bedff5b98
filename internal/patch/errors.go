package patch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError reports a webhook body that is not a single JSON object. The
// offset lets a sender find the fault in a body it generated.
type SyntaxError struct {
	// Offset counts the body's bytes read when the fault was found,
	// including the offending byte (encoding/json's convention).
	Offset int64
	Msg    string // what is wrong there
	Err    error  // the decoder's error, when there is one
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at offset %d: %s", e.Offset, e.Msg)
}

// Code returns CodeJSONMalformed.
func (e *SyntaxError) Code() string { return CodeJSONMalformed }

// Unwrap gives access to the *json.SyntaxError behind e, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

// FieldError reports a missing or invalid field of a patch block. Msg is the
// complete message: senders written for the Flask service that patchd
// replaces match texts such as "Missing required field: role" verbatim.
type FieldError struct {
	Name string // dotted name of the field, such as "patch.pattern" or "edits[2].search"
	Msg  string // the message, returned as is by Error
	// Kind is the error's code: CodeFieldMissing, CodeFieldInvalid or
	// CodeTooManyEdits; "" is CodeFieldInvalid.
	Kind string
}

func (e *FieldError) Error() string { return e.Msg }

// Field returns the dotted name of the field at fault, as the message
// names it.
func (e *FieldError) Field() string { return e.Name }

// Code returns e.Kind, or CodeFieldInvalid when it is not set.
func (e *FieldError) Code() string {
	if e.Kind == "" {
		return CodeFieldInvalid
	}
	return e.Kind
}

func missing(field string) *FieldError {
	return &FieldError{Name: field, Msg: "Missing required field: " + field, Kind: CodeFieldMissing}
}

func invalid(field, why string) *FieldError {
	return &FieldError{Name: field, Msg: "Invalid field: " + field + ": " + why, Kind: CodeFieldInvalid}
}

// tooMany is invalid for a field holding more edits than a block may.
func tooMany(field, why string) *FieldError {
	e := invalid(field, why)
	e.Kind = CodeTooManyEdits
	return e
}

// NotFoundError reports a pattern that matched nothing in the target file.
// It is an error, not a no-op, because an agent that patched a stale copy of
// the file must learn that its edit did not land.
type NotFoundError struct {
	File    string // the target file, as named in the block
	Pattern string
}

func (e *NotFoundError) Error() string { return "pattern not found in " + e.File }

// Code returns CodeMatchNotFound.
func (e *NotFoundError) Code() string { return CodeMatchNotFound }

// MatchError reports an edit whose text was not found in its file, or was
// found in several places. Its message is meant for the agent that wrote
// the edit: it quotes what was looked for and shows the closest lines
// actually in the file, or lists the places that matched, so that the next
// attempt can be corrected.
type MatchError struct {
	File string // the file searched, as the edit names it
	// What names the text: "search text", "diff hunk 2 (@@ -10,4 +10,5 @@)",
	// "apply_patch hunk 1", "@@ anchor line".
	What  string
	Lines []string // the lines looked for
	AtEnd bool     // they had to be the last lines of the file (*** End of File)

	// Count is the number of places the text matched when it was
	// ambiguous (at least 2, capped at 100), 0 when it was not found.
	Count  int
	Places []int  // first line of each place (1-based), when ambiguous
	Hint   string // how to make an ambiguous text unique
	// After is the number of the previous hunk when only the places after
	// it are counted (the hunk order set the others aside), 0 otherwise.
	After int
	// Tied holds two places (lines, 1-based) equally near line Near,
	// where the edit's line numbers put it, when those could not decide.
	Tied [2]int
	Near int

	Closest   *Closest // the most similar lines of the file, nil if none is similar
	FileLines int      // number of lines in the file
	// Note is a remark on the text looked for, such as lines elided with
	// "...", that explains why it cannot match.
	Note string
	// AppliedAt is the line (1-based) where the lines the edit would
	// produce already are, when they are: the edit was probably applied
	// before. 0 when they are not in the file.
	AppliedAt int
}

// Closest is the window of a file most similar to a text that was not found.
type Closest struct {
	Start   int      // number of its first line (1-based)
	Lines   []string // its lines, without line endings
	Percent int      // similarity to the text looked for, 0-100
}

// Limits on how much of a text a MatchError quotes.
const (
	quoteLines    = 12
	quoteLineLen  = 160
	quotePlaces   = 10
	ellipsis      = "…"
	quotePrefix   = "  "
	numberDivider = "| "
)

func (e *MatchError) Error() string {
	var b strings.Builder
	if e.Count > 0 {
		count := strconv.Itoa(e.Count)
		if e.Count >= maxPlaces {
			count = "at least " + count
		}
		after := ""
		if e.After > 0 {
			after = fmt.Sprintf(" after hunk %d", e.After)
		}
		fmt.Fprintf(&b, "%s matches %s places in %s%s (lines %s)", e.What, count, e.File, after, placeList(e.Places))
		if e.Near > 0 {
			fmt.Fprintf(&b, "; lines %d and %d are equally near line %d, where its line numbers put it", e.Tied[0], e.Tied[1], e.Near)
		}
		if e.Hint != "" {
			b.WriteString("; " + e.Hint)
		}
		return b.String()
	}
	where := "in "
	if e.AtEnd {
		where = "at the end of "
	}
	fmt.Fprintf(&b, "%s not found %s%s:\n", e.What, where, e.File)
	writeQuote(&b, 0, e.Lines)
	switch {
	case e.Closest != nil:
		c := e.Closest
		span := fmt.Sprintf("line %d", c.Start)
		if len(c.Lines) > 1 {
			span = fmt.Sprintf("lines %d-%d", c.Start, c.Start+len(c.Lines)-1)
		}
		fmt.Fprintf(&b, "closest match (%s, %d%% similar):\n", span, c.Percent)
		writeQuote(&b, c.Start, c.Lines)
	case e.FileLines == 0:
		b.WriteString("the file is empty\n")
	default:
		fmt.Fprintf(&b, "no similar lines in the file (%d lines)\n", e.FileLines)
	}
	if e.Note != "" {
		b.WriteString(e.Note + "\n")
	}
	if e.AppliedAt > 0 {
		fmt.Fprintf(&b, "the lines this edit would produce are already in the file at line %d: was it applied before?\n", e.AppliedAt)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Code returns CodeMatchAmbiguous for a text found in several places,
// CodeMatchNotFound for one not found.
func (e *MatchError) Code() string {
	if e.Count > 0 {
		return CodeMatchAmbiguous
	}
	return CodeMatchNotFound
}

// writeQuote writes lines indented, truncated to a readable size, each
// with its line number when start > 0.
func writeQuote(b *strings.Builder, start int, lines []string) {
	shown := lines[:min(len(lines), quoteLines)]
	width := len(strconv.Itoa(start + len(shown) - 1))
	for i, l := range shown {
		row := quotePrefix
		if start > 0 {
			num := strconv.Itoa(start + i)
			row += strings.Repeat(" ", width-len(num)) + num + numberDivider
		}
		// Blank lines are quoted as blank, without trailing spaces.
		b.WriteString(strings.TrimRight(row+truncate(l, quoteLineLen), " "))
		b.WriteByte('\n')
	}
	if more := len(lines) - len(shown); more > 0 {
		fmt.Fprintf(b, "%s%s (%d more lines)\n", quotePrefix, ellipsis, more)
	}
}

// truncate cuts s to at most n bytes at a character boundary, marking the cut.
func truncate(s string, n int) string {
	s = strings.TrimRight(s, "\r")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + ellipsis
}

// editField names the members of an edit in errors, in parts as Parse
// finds them: they are joined only for a PlanError's Field, so a patch
// that applies allocates nothing for them. The zero editField names
// nothing.
type editField struct {
	elem   string // the element: "patch", "edits[2]", "patch.edits[2]"
	member string // its member holding the text: "pattern", "search", "old_string", "diff"; "" for a bare string, the element itself
	// target is the field naming the edit's file: "target_file",
	// "patch.target_file", or ".target_file", the element's own
	// ("edits[2].target_file"); "" for the forms that name files in their
	// text.
	target string
}

// memberName is the text that did not apply: "patch.search",
// "edits[2].diff", "patch" for a bare string.
func (f editField) memberName() string {
	if f.member == "" {
		return f.elem
	}
	return f.elem + "." + f.member
}

// targetName is the field naming the edit's file: "target_file",
// "edits[2].target_file", "" for the forms that name files in their text.
func (f editField) targetName() string {
	if strings.HasPrefix(f.target, ".") {
		return f.elem + f.target
	}
	return f.target
}

// PlanError is an edit of a block that could not be planned. Its message
// is the edit's error, prefixed with the element ("edits[2]: ...",
// "patch.edits[2]: ...", "patch[2]: ...") in a block with a list of
// edits; Unwrap gives that error, whose Code says why.
type PlanError struct {
	Index int // the element of the list of edits, -1 for the block's one "patch"
	err   error
	ef    editField
	list  string // the list's field; "" is "edits"
}

func (e *PlanError) Error() string {
	if e.Index >= 0 {
		list := e.list
		if list == "" {
			list = "edits"
		}
		return fmt.Sprintf("%s[%d]: %s", list, e.Index, e.err)
	}
	return e.err.Error()
}

// Unwrap returns the edit's error.
func (e *PlanError) Unwrap() error { return e.err }

// Field names the member of the block at fault: the edit's target_file
// when the file is what is wrong (missing, existing, a refused path),
// "" for a limit, otherwise the edit's text ("patch.pattern",
// "edits[2].search", "edits[0].diff").
func (e *PlanError) Field() string {
	var c interface{ Code() string }
	code := ""
	if errors.As(e.err, &c) {
		code = c.Code()
	}
	switch {
	case code == CodeFileTooLarge || code == CodePatchTooLarge:
		return ""
	case e.ef.target != "" && (code == CodeFileNotFound || code == CodeFileExists || strings.HasPrefix(code, "path_")):
		return e.ef.targetName()
	}
	return e.ef.memberName()
}
