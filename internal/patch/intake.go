package patch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/patchd/patchd/internal/jsonscan"
)

// The shapes agents send, besides the block's own: "patch" holding the list
// of edits (an array, or {"edits": [...]}), Claude's Edit tool's names for
// search/replace, and members under names patchd does not take, which are
// refused naming the name it does take.

// editMembers names the members of each form of edit, for messages.
const editMembers = `"pattern" and "replacement" (a regex edit), "search" and "replace" (or "old_string" and "new_string"), "diff" (a unified diff), "apply_patch" or "text" (aider SEARCH/REPLACE blocks)`

// stringShapes is the refusal of a string that is none of the texts a
// bare string is read as.
const stringShapes = `a string is read only as a unified diff (--- and +++ lines, @@ hunks), an apply_patch text (*** Begin Patch … *** End Patch) or aider SEARCH/REPLACE blocks (a path line, <<<<<<< SEARCH, =======, >>>>>>> REPLACE), and this is none of them; an edit object holds ` + editMembers

// editList is where a block's list of edits is: field names it in
// messages ("edits", "patch.edits" or "patch"), "" for a block of one
// edit. target is the default target_file the list carries
// ("patch.target_file" beside "patch.edits"), named by targetField.
type editList struct {
	raw                 json.RawMessage
	field               string
	target, targetField string
}

// listOf finds the list of edits of a block: "edits", or "patch" given as
// one, as an array or as {"edits": [...]} (with an optional default
// "target_file"). A block holds one list: "edits" beside a "patch" of any
// kind is refused, naming both. err is what is wrong with the list; the
// caller reports it after the fields checked before it, and the list's
// field is set even then, so that the block counts as one of edits.
func listOf(fields map[string]json.RawMessage) (l editList, err error) {
	edits, patch := fields["edits"], fields["patch"]
	var obj map[string]json.RawMessage
	if !isBlank(patch) && patch[0] == '{' && mayHoldEdits(patch) {
		if o, ok := splitObject(patch); ok {
			obj = o
		} else if json.Unmarshal(patch, &o) == nil {
			obj = o
		}
	}
	_, nested := obj["edits"]
	isList := !isBlank(patch) && patch[0] == '['
	switch {
	case !isBlank(edits) && nested:
		return editList{field: "edits"}, invalid("edits", `a block holds its list of edits in "edits" or in "patch.edits", not both`)
	case !isBlank(edits) && isList:
		return editList{field: "edits"}, invalid("edits", `a block holds its list of edits in "edits" or in "patch" (a list), not both`)
	case !isBlank(edits) && !isBlank(patch):
		return editList{field: "edits"}, invalid("edits", `a block holds either "patch" or "edits", not both`)
	case !isBlank(edits):
		return editList{raw: edits, field: "edits"}, nil
	case isList:
		return editList{raw: patch, field: "patch"}, nil
	case !nested:
		return editList{}, nil
	}
	l = editList{field: "patch.edits"}
	var members []string
	for _, m := range formMembers {
		for _, k := range append([]string{m.key}, m.secondary...) {
			if v, ok := obj[k]; ok && !isNull(v) {
				members = append(members, k)
			}
		}
	}
	if len(members) > 0 {
		return l, invalid("patch", fmt.Sprintf(`holds "edits" and the members of one edit (%s); send one edit, or "edits", a list of edits`, strings.Join(members, ", ")))
	}
	if isBlank(obj["edits"]) {
		return l, missing("patch.edits")
	}
	if l.target, err = stringField(obj, "target_file"); err != nil {
		return l, retag(err, "patch.target_file")
	}
	if l.target != "" {
		l.targetField = "patch.target_file"
	}
	if k := pathAlias(obj); k != "" {
		return l, invalid("patch."+k, pathAliasMsg("a list of edits", k))
	}
	l.raw = obj["edits"]
	return l, nil
}

// Names agents give members, for members patchd names otherwise. Each is
// refused naming the member meant, rather than ignored: an ignored "path"
// would leave the edit to another file.
var (
	pathAliases    = []string{"path", "file", "file_path", "filepath", "filename"}
	searchAliases  = []string{"find", "old", "old_text", "oldText", "original"}
	replaceAliases = []string{"new", "new_text", "newText", "replace_with", "updated", "with"}
	diffAliases    = []string{"patch", "unified_diff", "udiff"}
)

// alias returns the first of names present (not null) in obj, "" if none.
func alias(obj map[string]json.RawMessage, names []string) string {
	for _, k := range names {
		if v, ok := obj[k]; ok && !isNull(v) {
			return k
		}
	}
	return ""
}

// pathAlias returns the member of obj naming a file under another name than
// target_file, "" if none.
func pathAlias(obj map[string]json.RawMessage) string { return alias(obj, pathAliases) }

func pathAliasMsg(what, k string) string {
	return fmt.Sprintf(`%s names its file in "target_file" (a path relative to the workspace), not %q`, what, k)
}

// blockPathAlias refuses a block that names its file under another name
// than target_file, and has no target_file: without this, it would be
// refused for the missing target_file, or its file name ignored.
func blockPathAlias(fields map[string]json.RawMessage) error {
	if !isBlank(fields["target_file"]) {
		return nil
	}
	for _, k := range pathAliases {
		if !isBlank(fields[k]) {
			return invalid(k, pathAliasMsg("a block", k))
		}
	}
	return nil
}

// misnamed refuses an edit object none of whose members says its form,
// when one of them is a known other name for a member; nil otherwise.
func misnamed(obj map[string]json.RawMessage, field string) error {
	if k := alias(obj, searchAliases); k != "" {
		return invalid(field+"."+k, fmt.Sprintf(`a search/replace edit takes "search" (the text to find) and "replace", not %q`, k))
	}
	if k := alias(obj, replaceAliases); k != "" {
		return invalid(field+"."+k, fmt.Sprintf(`a search/replace edit takes "search" (the text to find) and "replace" (the text to put in its place), not %q`, k))
	}
	if k := alias(obj, diffAliases); k != "" {
		return invalid(field+"."+k, fmt.Sprintf(`a unified diff goes in "diff", an apply_patch text in "apply_patch", aider SEARCH/REPLACE blocks in "text"; not in %q`, k))
	}
	return nil
}

// searchNames are the members of a search/replace edit, under patchd's
// names or under those of Claude's Edit tool, which mean the same: the
// text must occur once unless all is set, and an empty one creates the
// file.
type searchNames struct{ search, replace, all string }

var (
	ownSearchNames    = searchNames{"search", "replace", "all"}
	claudeSearchNames = searchNames{"old_string", "new_string", "replace_all"}
)

// namesOf tells which names a search/replace edit uses: Claude's when it
// has "old_string", or no "search" but one of Claude's other two.
func namesOf(obj map[string]json.RawMessage) (use, other searchNames) {
	present := func(k string) bool { v, ok := obj[k]; return ok && !isNull(v) }
	if present("old_string") || !present("search") && (present("new_string") || present("replace_all")) {
		return claudeSearchNames, ownSearchNames
	}
	return ownSearchNames, claudeSearchNames
}

// mayHoldEdits reports whether the object obj may have a member "edits":
// false only when a scan of its member names, without allocating, finds
// none, so that the edit of every block is not split into a map twice
// (listOf, then decodeEdit). A name with escapes is unquoted to be sure.
func mayHoldEdits(obj []byte) bool {
	found := false
	ok := jsonscan.Object(obj, func(key, _ []byte) bool {
		if bytes.IndexByte(key, '\\') < 0 {
			found = found || string(key) == "edits"
			return true
		}
		k, ok := unquoteKey(key)
		found = found || k == "edits"
		return ok
	})
	return found || !ok
}
