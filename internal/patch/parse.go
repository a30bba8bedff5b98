package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/jsonscan"
)

// Limits on the fields of a block. The id becomes a file name in the store,
// so it is short and plain; the others bound what one block can make the
// daemon keep in memory and write into summaries.
const (
	MaxIDLen          = 128      // bytes (the id is ASCII)
	MaxRoleLen        = 128      // characters
	MaxDescriptionLen = 64 << 10 // bytes
	MaxPatternLen     = 64 << 10 // bytes
)

// Block is one patch as an agent submits it to POST /webhook.
type Block struct {
	ID          string // names the patch; safe to use as a file name
	Role        string // the sender's label for the kind of change, such as "ui_patch"
	TargetFile  string // workspace-relative path, not yet confined (the workspace package does that)
	Description string // free text for the summary
	Tag         string // optional git tag name (checkTag)
	// Patch is the edit of a block whose "patch" is a regex edit, and zero
	// for every other form. It is kept for code written before Plan, which
	// applies every form; Regex.Apply of a zero Patch fails.
	Patch Regex
	// Edits are the block's edits in order: the one of "patch", or the
	// elements of "edits".
	Edits []Edit
	// Metadata is the sender's "metadata" object, nil when absent. Numbers
	// are json.Number so that large integers survive a round trip.
	Metadata map[string]any
	// Wait is how long the sender asks the webhook to wait for the
	// patch's outcome ("wait_seconds"), 0 when it does not; at most MaxWait.
	Wait time.Duration

	multi bool   // the edits came from a list, so errors name the element
	list  string // the list's field: "edits", "patch.edits" or "patch"
	// field names the members of the one edit of "patch" in errors
	// (Field), fields those of each edit of a list.
	field  editField
	fields []editField
}

// Parse decodes and validates a webhook body. Errors are *SyntaxError for a
// body that is not one JSON object and *FieldError for a missing or invalid
// field; their messages are meant to be shown to the sender as they are.
// Unknown fields are ignored, because senders add their own.
func Parse(body []byte) (*Block, error) {
	return ParseWith(body, ParseOptions{})
}

// ParseOptions adjust what Parse accepts.
type ParseOptions struct {
	// MaxEdits bounds the elements of "edits"; 0 is MaxEdits.
	MaxEdits int
	// MaxEditsSetting names the setting that raises MaxEdits, for the
	// message ("" to name none).
	MaxEditsSetting string
}

// ParseWith is Parse with options.
func ParseWith(body []byte, o ParseOptions) (*Block, error) {
	fields, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	// Presence is checked in this order, before any type check, as the
	// Flask service did: a body lacking both role and target_file reports
	// role, whatever else is wrong with it. target_file is only required
	// by the single-file forms (regex and search/replace) of "patch"; a
	// block with "edits" names the files in its elements.
	for _, name := range [...]string{"id", "role"} {
		if isBlank(fields[name]) {
			return nil, missing(name)
		}
	}
	if err := blockPathAlias(fields); err != nil {
		return nil, err
	}
	list, listErr := listOf(fields)
	multi := list.field != ""
	if !multi {
		if isBlank(fields["target_file"]) && needsTarget(fields["patch"]) {
			return nil, missing("target_file")
		}
		if isBlank(fields["patch"]) {
			return nil, missing("patch")
		}
	}

	b := &Block{multi: multi, list: list.field}
	if b.ID, err = stringField(fields, "id"); err != nil {
		return nil, err
	}
	if err := checkID(b.ID); err != nil {
		return nil, err
	}
	if b.Role, err = stringField(fields, "role"); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(b.Role); n > MaxRoleLen {
		return nil, invalid("role", fmt.Sprintf("longer than %d characters", MaxRoleLen))
	}
	if b.TargetFile, err = stringField(fields, "target_file"); err != nil {
		return nil, err
	}
	expand, err := boolField(fields, "expand", "expand")
	if err != nil {
		return nil, err
	}
	switch {
	case listErr != nil:
		return nil, listErr
	case multi:
		if b.Edits, b.fields, err = decodeEdits(list, b.TargetFile, expand, o); err != nil {
			return nil, err
		}
	default:
		e, ef, err := decodeEdit(fields["patch"], "patch", b.TargetFile, "target_file", expand, o.maxEdits(), o)
		if err != nil {
			return nil, err
		}
		b.Edits, b.field = []Edit{e}, ef
		if re, ok := e.(*RegexEdit); ok {
			b.Patch = re.Regex
		}
	}
	if b.Description, err = stringField(fields, "description"); err != nil {
		return nil, err
	}
	if len(b.Description) > MaxDescriptionLen {
		return nil, invalid("description", fmt.Sprintf("longer than %d bytes", MaxDescriptionLen))
	}
	if b.Tag, err = stringField(fields, "tag"); err != nil {
		return nil, err
	}
	if b.Tag != "" {
		if err := checkTag(b.Tag); err != nil {
			return nil, err
		}
	}
	if b.Metadata, err = objectField(fields, "metadata"); err != nil {
		return nil, err
	}
	if b.Wait, err = waitField(fields); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeObject splits a body into its top-level members, keeping each value
// raw so that every field is typed and reported on its own.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	// Senders on Windows (PowerShell) prefix a byte order mark, which the
	// Flask service accepted; encoding/json does not.
	skip := 0
	if bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		skip = 3
	}
	data := body[skip:]
	start := skip + (len(data) - len(bytes.TrimLeft(data, " \t\r\n")))
	if start == len(body) {
		return nil, &SyntaxError{Offset: int64(start), Msg: "empty body, want a JSON object"}
	}
	// An object, the common case, in one pass: Unmarshal validates all of
	// data (data after the object included) before it decodes anything, so
	// the errors are the same as when validating separately first.
	if data[start-skip] == '{' {
		// Valid then split is the same answer as Unmarshal for a valid
		// body, at a fraction of the cost; an invalid one gets
		// Unmarshal's error below.
		if json.Valid(data) {
			if fields, ok := splitObject(data); ok {
				return fields, nil
			}
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			if se, ok := err.(*json.SyntaxError); ok {
				return nil, &SyntaxError{Offset: int64(skip) + se.Offset, Msg: se.Error(), Err: err}
			}
			return nil, &SyntaxError{Offset: int64(start), Msg: err.Error(), Err: err}
		}
		return fields, nil
	}
	// Validating the whole body first also rejects data after the value,
	// which json.Decoder would silently leave unread.
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		if se, ok := err.(*json.SyntaxError); ok {
			return nil, &SyntaxError{Offset: int64(skip) + se.Offset, Msg: se.Error(), Err: err}
		}
		return nil, &SyntaxError{Offset: int64(start), Msg: err.Error(), Err: err}
	}
	if raw[0] != '{' {
		return nil, &SyntaxError{Offset: int64(start) + 1, Msg: "top-level value is " + kindOf(raw) + ", want an object"}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		// Unreachable for a valid object; kept so a decoder change cannot
		// turn into a nil map being trusted.
		return nil, &SyntaxError{Offset: int64(start), Msg: err.Error(), Err: err}
	}
	return fields, nil
}

// kindOf names the JSON type of a valid, trimmed value for messages.
func kindOf(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// isBlank is the Flask service's notion of a missing value, narrowed to the
// values that cannot be meant as content: absent, null or "".
func isBlank(raw json.RawMessage) bool {
	return raw == nil || isNull(raw) || string(raw) == `""`
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// stringField decodes an optional string member; absent and null give "".
func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw := fields[name]
	if raw == nil || isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", invalid(name, "must be a string, not "+kindOf(raw))
	}
	// raw is valid JSON (it comes out of Unmarshal). jsonscan unescapes
	// all but what Unmarshal would repair (invalid UTF-8, a lone
	// surrogate), without its reflection: a pattern's quotes are escaped.
	if s, ok := jsonscan.String(raw); ok {
		return s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(name, "must be a string")
	}
	return s, nil
}

// boolField decodes an optional boolean member; nil means absent or null, so
// that callers can tell "false" from "not said". field names it in messages.
func boolField(fields map[string]json.RawMessage, name, field string) (*bool, error) {
	raw := fields[name]
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	var v bool
	switch string(raw) {
	case "true":
		v = true
	case "false":
	default:
		return nil, invalid(field, "must be a boolean (true or false), not "+kindOf(raw))
	}
	return &v, nil
}

// objectField decodes an optional object member; absent and null give nil.
func objectField(fields map[string]json.RawMessage, name string) (map[string]any, error) {
	raw := fields[name]
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, invalid(name, "must be an object, not "+kindOf(raw))
	}
	if m, ok := flatObject(raw); ok {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, invalid(name, "must be an object")
	}
	return m, nil
}

// checkID keeps the id usable as a file name on every system patchd runs
// on: no separators, no hidden or relative names, nothing to quote.
func checkID(id string) error {
	const allowed = "letters A-Z a-z, digits 0-9 and . _ : -"
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == ':' || r == '-'
		if !ok {
			return invalid("id", fmt.Sprintf("character %q at position %d is not allowed (use %s)", r, i, allowed))
		}
	}
	// Checked after the characters, so that len counts characters.
	if len(id) > MaxIDLen {
		return invalid("id", fmt.Sprintf("longer than %d characters", MaxIDLen))
	}
	if id[0] == '.' {
		return invalid("id", "must not start with '.' (use "+allowed+")")
	}
	return nil
}

// MaxWait is the longest wait for a patch's outcome a block may ask for
// ("wait_seconds"); it is api.MaxWait (a test in patchsvc holds them equal).
const MaxWait = 40 * time.Second

// waitField decodes "wait_seconds": absent or null give 0; otherwise a
// number of seconds above 0 and at most MaxWait, to the millisecond.
func waitField(fields map[string]json.RawMessage) (time.Duration, error) {
	raw := fields["wait_seconds"]
	if raw == nil || isNull(raw) {
		return 0, nil
	}
	bad := invalid("wait_seconds", fmt.Sprintf("must be a number of seconds above 0 and at most %g, not %s", MaxWait.Seconds(), shortJSON(raw)))
	var n float64
	if kindOf(raw) != "a number" || json.Unmarshal(raw, &n) != nil {
		return 0, bad
	}
	d := time.Duration(math.Round(n*1000)) * time.Millisecond
	if math.IsNaN(n) || n <= 0 || n > MaxWait.Seconds() || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// shortJSON quotes a member's JSON for a message, at most 40 bytes of it.
func shortJSON(raw json.RawMessage) string {
	if len(raw) > 40 {
		i := 40
		for i > 0 && !utf8.RuneStart(raw[i]) {
			i--
		}
		return string(raw[:i]) + "…"
	}
	return string(raw)
}
