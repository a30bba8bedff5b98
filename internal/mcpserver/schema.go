package mcpserver

import (
	"encoding/json"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/patchd/patchd/internal/api"
)

// The bounds of apply_patch's wait_seconds.
const (
	// DefaultWaitSeconds is how long apply_patch waits for the outcome
	// when the call does not say.
	DefaultWaitSeconds = 30
	// MaxWaitSeconds is the longest wait apply_patch accepts: below the
	// tool-call timeouts of common clients (Codex CLI's is 60 s).
	MaxWaitSeconds = 55
	// DefaultListLimit is list_patches' page when the call does not say.
	DefaultListLimit = 20
)

// The members of an edit, as the patch block's "patch" and each element of
// "edits" take them; which members are present says the form.
func editProperties() map[string]*jsonschema.Schema {
	str := func(d string) *jsonschema.Schema { return &jsonschema.Schema{Type: "string", Description: d} }
	boolean := func(d string) *jsonschema.Schema { return &jsonschema.Schema{Type: "boolean", Description: d} }
	return map[string]*jsonschema.Schema{
		"target_file": str("The workspace-relative path this edit changes (search/replace and regex forms). Overrides the top-level target_file for this edit."),
		"search":      str("Search/replace form: the exact current text to replace, copied from the file (read_file shows it), including indentation. It must occur exactly once unless \"all\" is true; include enough surrounding lines to make it unique. An empty search creates the file (or fills an empty one) with replace."),
		"replace":     str("Search/replace form: the text that replaces search."),
		"all":         boolean("Search/replace form: replace every occurrence of search instead of requiring exactly one."),
		"pattern":     str("Regex form: a Go RE2 regular expression; every match is replaced. Prefer search/replace for code."),
		"replacement": str("Regex form: the replacement text (literal unless expand is true)."),
		"expand":      boolean("Regex form: expand $1 and ${name} in replacement."),
		"diff":        str("Unified diff form: a git-style or plain unified diff of one or many files (changes, creations with --- /dev/null, deletions, renames). Context lines must match the file; line numbers are hints."),
		"apply_patch": str("OpenAI apply_patch form: a text from *** Begin Patch to *** End Patch with *** Add File, *** Update File (optionally *** Move to) and *** Delete File sections."),
		"text":        str("Aider form: one or more SEARCH/REPLACE blocks, each a file path line, then <<<<<<< SEARCH, the old lines, =======, the new lines, >>>>>>> REPLACE."),
	}
}

// editSchema is one edit: an object whose members say its form.
func editSchema(desc string) *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "object",
		Description: desc,
		Properties:  editProperties(),
	}
}

// patchProperties are the patch block's fields, as apply_patch and
// preview_patch take them.
func patchProperties() map[string]*jsonschema.Schema {
	return map[string]*jsonschema.Schema{
		"id":          {Type: "string", Description: "Optional id naming this patch (1-128 of A-Z a-z 0-9 . _ : -, not starting with '.'); patchd generates one when it is missing. Sending the same id and body again answers the first patch's outcome instead of applying it twice."},
		"description": {Type: "string", Description: "Optional: what the change does and why, one line; kept in the patch's history."},
		"target_file": {Type: "string", Description: "The workspace-relative path (like src/app.py) that a single search/replace or regex edit in patch changes. Not needed for diff, apply_patch and aider text, which name their files, nor with edits whose elements name their own target_file."},
		"patch":       editSchema("One edit. Use exactly one form: {\"search\", \"replace\"} (with target_file), {\"diff\"}, {\"apply_patch\"}, {\"text\"} (aider blocks) or {\"pattern\", \"replacement\"}. Give either patch or edits, not both."),
		"edits": {Type: "array", MinItems: ptr(1), Items: editSchema("One edit, in any of the forms of patch; a search/replace or regex edit names its own target_file."),
			Description: "Several edits, across one or many files, applied in order as one transaction: all of them or none. Use this to change several files at once."},
		"role": {Type: "string", Description: "Optional label for the kind of change, like refactor or bugfix (default mcp)."},
	}
}

// patchOrder lists patchProperties in the order a model should read them.
var patchOrder = []string{"id", "description", "target_file", "patch", "edits", "role"}

func applySchema() *jsonschema.Schema {
	props := patchProperties()
	props["wait_seconds"] = &jsonschema.Schema{Type: "integer", Minimum: ptr(0.0), Maximum: ptr(float64(MaxWaitSeconds)), Default: json.RawMessage("30"),
		Description: "How long to wait for the outcome, 0 to 55 seconds (default 30). Patches apply one at a time; if this one is still queued at the end, the answer says so and patch_status tells the outcome later."}
	return &jsonschema.Schema{Type: "object", Properties: props, PropertyOrder: append(patchOrder, "wait_seconds")}
}

func previewSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", Properties: patchProperties(), PropertyOrder: patchOrder}
}

func idSchema(desc string) *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", Required: []string{"id"}, Properties: map[string]*jsonschema.Schema{
		"id": {Type: "string", MinLength: ptr(1), MaxLength: ptr(128), Description: desc},
	}}
}

func listSchema() *jsonschema.Schema {
	states := make([]any, 0, 5)
	for _, s := range api.States() {
		states = append(states, s)
	}
	return &jsonschema.Schema{Type: "object", PropertyOrder: []string{"state", "limit"}, Properties: map[string]*jsonschema.Schema{
		"state": {Type: "string", Enum: states, Description: "Optional: only patches in this state (queued, applying, applied, failed or reverted)."},
		"limit": {Type: "integer", Minimum: ptr(1.0), Maximum: ptr(float64(api.MaxListLimit)), Default: json.RawMessage("20"),
			Description: "How many patches to list, newest first (default 20)."},
	}}
}

func readSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", Required: []string{"path"}, PropertyOrder: []string{"path", "start_line", "end_line"}, Properties: map[string]*jsonschema.Schema{
		"path":       {Type: "string", MinLength: ptr(1), Description: "The file's path relative to the workspace root, like src/app.py (as a patch's target_file)."},
		"start_line": {Type: "integer", Minimum: ptr(1.0), Description: "Optional: the first line to show, from 1 (default 1)."},
		"end_line":   {Type: "integer", Minimum: ptr(1.0), Description: fmt.Sprintf("Optional: the last line to show, inclusive (default: to the end of the file, at most %d lines a call).", api.MaxReadLines)},
	}}
}

func listFilesSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", PropertyOrder: []string{"path", "glob"}, Properties: map[string]*jsonschema.Schema{
		"path": {Type: "string", Description: "Optional: the directory to list, relative to the workspace root (default: the root)."},
		"glob": {Type: "string", MaxLength: ptr(api.MaxGlobLen), Description: "Optional: keep only the files whose path relative to path matches, like **/*.go (any depth), *.md (top level only) or cmd/*/main.go; * and ? do not cross a /."},
	}}
}

func ptr[T any](v T) *T { return &v }
