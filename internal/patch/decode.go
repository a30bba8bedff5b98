package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxEdits is the default bound on the elements of "edits"
// (ParseOptions.MaxEdits).
const MaxEdits = 1000

// form is the format of a "patch" value or an "edits" element, told by its
// members.
type form int

const (
	formRegex form = iota + 1
	formSearch
	formDiff
	formApplyPatch
	formAider
)

// shape is a "patch" value or "edits" element decoded far enough to know
// its format.
type shape struct {
	form form
	obj  map[string]json.RawMessage // its members; nil for a string
	text string                     // the diff, apply_patch or aider text given as a bare string
}

// The member that decides each format, and the ones that only go with it.
var formMembers = []struct {
	form      form
	key       string
	secondary []string
}{
	{formRegex, "pattern", []string{"replacement", "expand"}},
	{formSearch, "search", []string{"replace", "all"}},
	{formSearch, "old_string", []string{"new_string", "replace_all"}}, // Claude's Edit tool's names
	{formDiff, "diff", nil},
	{formApplyPatch, "apply_patch", nil},
	{formAider, "text", nil},
}

// shapeOf tells the format of an edit by its members: "pattern" (regex),
// "search" or "old_string" (search/replace), "diff" (unified diff),
// "apply_patch" or "text" (aider edit blocks). A bare string is accepted
// when it is clearly a unified diff, an apply_patch text or aider edit
// blocks, which agents sometimes send as "patch" itself. What cannot be
// read is refused saying what was expected.
func shapeOf(raw json.RawMessage, field string) (shape, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			switch {
			case strings.Contains(s, beginPatch):
				return shape{form: formApplyPatch, text: s}, nil
			case hasAiderBlock(s):
				return shape{form: formAider, text: s}, nil
			case looksLikeDiff(s):
				return shape{form: formDiff, text: s}, nil
			}
		}
		return shape{}, invalid(field, stringShapes)
	}
	if raw[0] != '{' {
		if field == "patch" {
			return shape{}, invalid(field, "must be an object (one edit) or an array (a list of edits), not "+kindOf(raw))
		}
		return shape{}, invalid(field, "must be an object, not "+kindOf(raw))
	}
	// raw is a value of a body that was validated whole.
	obj, ok := splitObject(raw)
	if !ok {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return shape{}, invalid(field, "must be an object")
		}
	}
	present := func(k string) bool { v, ok := obj[k]; return ok && !isNull(v) }
	var found []string
	var f form
	for _, m := range formMembers {
		if present(m.key) {
			found = append(found, m.key)
			f = m.form
		}
	}
	if present("edits") {
		return shape{}, invalid(field, `holds "edits": lists of edits do not nest; put its edits in the outer list`)
	}
	if present("search") && present("old_string") {
		return shape{}, invalid(field, `holds "search" and "old_string", two names of one member; send one`)
	}
	if len(found) > 1 {
		return shape{}, invalid(field, fmt.Sprintf("holds members of several formats (%s); send one edit per object", strings.Join(found, ", ")))
	}
	if f == 0 {
		if err := misnamed(obj, field); err != nil {
			return shape{}, err
		}
		for _, m := range formMembers {
			for _, k := range m.secondary {
				if present(k) && f == 0 {
					f = m.form
				}
			}
		}
	}
	if f == 0 {
		if field == "patch" {
			return shape{}, invalid(field, "must hold "+editMembers+`, or "edits" (a list of edits)`)
		}
		return shape{}, invalid(field, "must hold "+editMembers)
	}
	return shape{form: f, obj: obj}, nil
}

// looksLikeDiff reports a text with the headers or hunks of a unified diff.
func looksLikeDiff(s string) bool {
	return strings.HasPrefix(s, "@@") || strings.Contains(s, "\n@@") ||
		strings.HasPrefix(s, "diff --git ") || strings.Contains(s, "\ndiff --git ") ||
		strings.Contains(s, "--- ") && strings.Contains(s, "\n+++ ")
}

// needsTarget reports whether a "patch" value is of a single-file form,
// for which the block's target_file is required (and reported missing
// before the fault of its patch, as the seed's service did). A value whose
// form cannot be told is not: its error, saying what was expected, tells
// more than a missing target_file.
func needsTarget(raw json.RawMessage) bool {
	if isBlank(raw) {
		return true
	}
	sh, err := shapeOf(raw, "patch")
	return err == nil && (sh.form == formRegex || sh.form == formSearch)
}

// decodeEdits decodes a list of edits, of at most o's MaxEdits: l.raw,
// named l.field in messages, whose elements without a target_file of
// their own take l.target, or else the block's target.
func decodeEdits(l editList, target string, outerExpand *bool, o ParseOptions) ([]Edit, []editField, error) {
	maxEdits := o.maxEdits()
	raw, field, targetField := l.raw, l.field, "target_file"
	if l.target != "" {
		target, targetField = l.target, l.targetField
	}
	if raw[0] != '[' {
		return nil, nil, invalid(field, "must be an array, not "+kindOf(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, nil, invalid(field, "must be an array")
	}
	switch {
	case len(elems) == 0:
		return nil, nil, invalid(field, "must hold at least one edit")
	case len(elems) > maxEdits:
		return nil, nil, tooMany(field, tooManyEdits("holds more than %d edits", maxEdits, o))
	}
	edits := make([]Edit, 0, len(elems))
	fields := make([]editField, 0, len(elems))
	// Every edit counts one against maxEdits, and an aider text one for
	// each of its blocks.
	used := 0
	for i, el := range elems {
		// What the edits after this one leave it: at least 1, as
		// every earlier text was held to what this leaves.
		left := maxEdits - used - (len(elems) - i - 1)
		e, ef, err := decodeEdit(el, fmt.Sprintf("%s[%d]", field, i), target, targetField, outerExpand, left, o)
		if err != nil {
			return nil, nil, err
		}
		used += editWeight(e)
		edits = append(edits, e)
		fields = append(fields, ef)
	}
	return edits, fields, nil
}

// editWeight is what an edit counts against MaxEdits: its blocks for an
// aider text, one otherwise.
func editWeight(e Edit) int {
	if a, ok := e.(*AiderText); ok {
		return len(a.blocks)
	}
	return 1
}

// tooManyEdits is the message of a block over MaxEdits: format with the
// bound, and the setting that raises it when o names one.
func tooManyEdits(format string, maxEdits int, o ParseOptions) string {
	msg := fmt.Sprintf(format, maxEdits)
	if o.MaxEditsSetting != "" {
		msg += fmt.Sprintf(", the most one patch may (setting %s)", o.MaxEditsSetting)
	}
	return msg
}

// decodeEdit decodes one edit, "patch" or an element of a list (field
// names it in messages). target is the default target_file, named
// targetField, which an element's own "target_file" overrides. An aider
// text may hold at most left blocks, what o's MaxEdits leaves it.
func decodeEdit(raw json.RawMessage, field, target, targetField string, outerExpand *bool, left int, o ParseOptions) (Edit, editField, error) {
	ef := editField{elem: field, target: targetField}
	sh, err := shapeOf(raw, field)
	if err != nil {
		return nil, editField{}, err
	}
	if sh.obj != nil {
		own, err := stringField(sh.obj, "target_file")
		if err != nil {
			return nil, editField{}, retag(err, field+".target_file")
		}
		if own != "" {
			target, ef.target = own, ".target_file"
		}
		if k := pathAlias(sh.obj); k != "" {
			return nil, editField{}, invalid(field+"."+k, pathAliasMsg("an edit", k))
		}
	}
	switch sh.form {
	case formRegex:
		r, err := decodeRegex(sh.obj, field, outerExpand)
		if err != nil {
			return nil, editField{}, err
		}
		if target == "" {
			return nil, editField{}, missing(field + ".target_file")
		}
		ef.member = "pattern"
		return &RegexEdit{TargetFile: target, Regex: r}, ef, nil
	case formSearch:
		s, member, err := decodeSearch(sh.obj, field)
		if err != nil {
			return nil, editField{}, err
		}
		if target == "" {
			return nil, editField{}, missing(field + ".target_file")
		}
		s.TargetFile = target
		ef.member = member
		return s, ef, nil
	}

	// The multi-file forms: a text, given in its member or as the value.
	key, textField := "diff", field+".diff"
	switch sh.form {
	case formApplyPatch:
		key, textField = "apply_patch", field+".apply_patch"
	case formAider:
		key, textField = "text", field+".text"
	}
	text := sh.text
	ef.target, ef.member = "", key
	if sh.obj == nil {
		textField, ef.member = field, ""
	} else {
		if isBlank(sh.obj[key]) {
			return nil, editField{}, missing(textField)
		}
		if text, err = stringField(sh.obj, key); err != nil {
			return nil, editField{}, retag(err, textField)
		}
	}
	if sh.form == formAider {
		blocks, err := parseAider(text, target, left)
		switch {
		case errors.Is(err, errTooManyBlocks) && field == "patch":
			return nil, editField{}, tooMany(textField, tooManyEdits("holds more than %d edit blocks", left, o))
		case errors.Is(err, errTooManyBlocks):
			return nil, editField{}, tooMany(textField, tooManyEdits("holds more edit blocks than the %d edits of a block allow (each block counts one, with the other edits)", o.maxEdits(), o))
		case err != nil:
			return nil, editField{}, invalid(textField, err.Error())
		}
		return &AiderText{Text: text, blocks: blocks}, ef, nil
	}
	if sh.form == formApplyPatch {
		files, err := parseApplyPatch(text)
		if err != nil {
			return nil, editField{}, invalid(textField, err.Error())
		}
		return &ApplyPatch{Text: text, files: files}, ef, nil
	}
	files, err := parseUnifiedDiff(text, target)
	if err != nil {
		return nil, editField{}, invalid(textField, err.Error())
	}
	return &UnifiedDiff{Text: text, files: files}, ef, nil
}

// decodeSearch validates the members of a search/replace edit, under
// patchd's names or Claude's Edit tool's (not mixed); member is the search
// text's name in the edit ("search", "old_string"), for errors.
func decodeSearch(obj map[string]json.RawMessage, field string) (s *SearchReplace, member string, err error) {
	n, other := namesOf(obj)
	present := func(k string) bool { v, ok := obj[k]; return ok && !isNull(v) }
	for _, k := range [...][2]string{{other.replace, n.replace}, {other.all, n.all}} {
		if present(k[0]) {
			return nil, "", invalid(field+"."+k[0], fmt.Sprintf("an edit with %q takes %q, not %q", n.search, k[1], k[0]))
		}
	}
	s = &SearchReplace{}
	if !present(n.search) {
		return nil, "", missing(field + "." + n.search)
	}
	if s.Search, err = stringField(obj, n.search); err != nil {
		return nil, "", retag(err, field+"."+n.search)
	}
	if !present(n.replace) {
		if present("replacement") {
			return nil, "", invalid(field+".replacement", fmt.Sprintf("a search/replace edit takes %q, not \"replacement\"", n.replace))
		}
		if k := alias(obj, replaceAliases); k != "" {
			return nil, "", invalid(field+"."+k, fmt.Sprintf("a search/replace edit takes %q (the text to put in its place), not %q", n.replace, k))
		}
		return nil, "", missing(field + "." + n.replace)
	}
	if s.Replace, err = stringField(obj, n.replace); err != nil {
		return nil, "", retag(err, field+"."+n.replace)
	}
	all, err := boolField(obj, n.all, field+"."+n.all)
	if err != nil {
		return nil, "", err
	}
	s.All = all != nil && *all
	return s, n.search, nil
}

// maxEdits is MaxEdits, or the package's default when it is not set.
func (o ParseOptions) maxEdits() int {
	if o.MaxEdits <= 0 {
		return MaxEdits
	}
	return o.MaxEdits
}
