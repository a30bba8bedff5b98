package patch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	okDiff = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
	okAP   = "*** Begin Patch\n*** Update File: f\n@@\n-a\n+b\n*** End Patch"
)

func TestParseFormErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  string
		field string
	}{
		// target_file is required by the single-file forms only, and
		// still reported before patch.
		{name: "search without target_file", body: `{"id":"a","role":"r","patch":{"search":"x","replace":"y"}}`, want: "Missing required field: target_file", field: "target_file"},
		{name: "no target_file, no patch", body: `{"id":"a","role":"r"}`, want: "Missing required field: target_file", field: "target_file"},
		// A patch whose form cannot be told says what was expected, not
		// that target_file is missing (issue 12).
		{name: "unknown shape without target_file", body: `{"id":"a","role":"r","patch":{"x":1}}`, want: `Invalid field: patch: must hold ` + wantEditMembers + `, or "edits" (a list of edits)`, field: "patch"},
		{name: "diff without target_file, no patch", body: `{"id":"a","role":"r","target_file":"f"}`, want: "Missing required field: patch", field: "patch"},

		{name: "unknown shape", body: `{"id":"a","role":"r","target_file":"f","patch":{"x":1}}`, want: `Invalid field: patch: must hold ` + wantEditMembers + `, or "edits" (a list of edits)`, field: "patch"},
		{name: "unknown element shape", body: `{"id":"a","role":"r","target_file":"f","edits":[{"x":1}]}`, want: `Invalid field: edits[0]: must hold ` + wantEditMembers, field: "edits[0]"},
		{name: "two formats", body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","search":"y"}}`, want: "Invalid field: patch: holds members of several formats (pattern, search); send one edit per object", field: "patch"},
		{name: "search without replace", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x"}}`, want: "Missing required field: patch.replace", field: "patch.replace"},
		{name: "replace without search", body: `{"id":"a","role":"r","target_file":"f","patch":{"replace":"x"}}`, want: "Missing required field: patch.search", field: "patch.search"},
		{name: "search with replacement", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x","replacement":"y"}}`, want: `Invalid field: patch.replacement: a search/replace edit takes "replace", not "replacement"`, field: "patch.replacement"},
		{name: "pattern with replace", body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replace":"y"}}`, want: `Invalid field: patch.replace: a regex edit takes "replacement", not "replace"`, field: "patch.replace"},
		{name: "numeric search", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":1,"replace":"y"}}`, want: "Invalid field: patch.search: must be a string, not a number", field: "patch.search"},
		{name: "string all", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x","replace":"y","all":"yes"}}`, want: "Invalid field: patch.all: must be a boolean (true or false), not a string", field: "patch.all"},
		{name: "empty diff", body: `{"id":"a","role":"r","patch":{"diff":""}}`, want: "Missing required field: patch.diff", field: "patch.diff"},
		{name: "numeric diff", body: `{"id":"a","role":"r","patch":{"diff":5}}`, want: "Invalid field: patch.diff: must be a string, not a number", field: "patch.diff"},
		{name: "diff without files", body: `{"id":"a","role":"r","patch":{"diff":"just some text\n"}}`, want: "Invalid field: patch.diff: no file changes found; a diff needs --- a/path and +++ b/path lines followed by @@ hunks", field: "patch.diff"},
		{name: "headerless diff without target_file", body: `{"id":"a","role":"r","patch":{"diff":"@@ -1 +1 @@\n-a\n+b\n"}}`, want: "Invalid field: patch.diff: line 1: hunk before any file header; start the diff with --- a/path and +++ b/path lines, or set target_file", field: "patch.diff"},
		{name: "binary diff", body: `{"id":"a","role":"r","patch":{"diff":"diff --git a/x b/x\nBinary files a/x and b/x differ\n"}}`, want: "Invalid field: patch.diff: line 2: binary patches are not supported", field: "patch.diff"},
		{name: "apply_patch without begin", body: `{"id":"a","role":"r","patch":{"apply_patch":"*** Update File: f\n*** End Patch"}}`, want: `Invalid field: patch.apply_patch: line 1: the patch must start with "*** Begin Patch", not "*** Update File: f"`, field: "patch.apply_patch"},
		{name: "string patch apply_patch cut short", body: `{"id":"a","role":"r","patch":"*** Begin Patch\n*** Add File: g\n+x"}`, want: `Invalid field: patch: line 3: the patch must end with "*** End Patch", not "+x" (was it cut short?)`, field: "patch"},

		// edits.
		{name: "edits and patch", body: `{"id":"a","role":"r","patch":{"diff":"` + jsonText(okDiff) + `"},"edits":[{"diff":"` + jsonText(okDiff) + `"}]}`, want: `Invalid field: edits: a block holds either "patch" or "edits", not both`, field: "edits"},
		{name: "edits object", body: `{"id":"a","role":"r","edits":{"diff":"x"}}`, want: "Invalid field: edits: must be an array, not an object", field: "edits"},
		{name: "edits empty", body: `{"id":"a","role":"r","edits":[]}`, want: "Invalid field: edits: must hold at least one edit", field: "edits"},
		{name: "edits too many", body: `{"id":"a","role":"r","edits":[` + strings.Repeat(`{"diff":"x"},`, MaxEdits) + `{"diff":"x"}]}`, want: "Invalid field: edits: holds more than 1000 edits", field: "edits"},
		{name: "edits element string", body: `{"id":"a","role":"r","edits":["s/a/b/"]}`, want: "Invalid field: edits[0]: " + wantStringShapes, field: "edits[0]"},
		{name: "edits element null", body: `{"id":"a","role":"r","edits":[{"diff":"` + jsonText(okDiff) + `"},null]}`, want: "Invalid field: edits[1]: must be an object, not null", field: "edits[1]"},
		{name: "edits element without target", body: `{"id":"a","role":"r","edits":[{"diff":"` + jsonText(okDiff) + `"},{"search":"x","replace":"y"}]}`, want: "Missing required field: edits[1].target_file", field: "edits[1].target_file"},
		{name: "edits element numeric target", body: `{"id":"a","role":"r","edits":[{"target_file":3,"search":"x","replace":"y"}]}`, want: "Invalid field: edits[0].target_file: must be a string, not a number", field: "edits[0].target_file"},
		{name: "edits element bad search", body: `{"id":"a","role":"r","edits":[{"target_file":"f","search":"x","replace":"y"},{"target_file":"f","search":"x","replace":"y"},{"target_file":"f","search":["x"],"replace":"y"}]}`, want: "Invalid field: edits[2].search: must be a string, not an array", field: "edits[2].search"},
		{name: "edits element bad pattern", body: `{"id":"a","role":"r","edits":[{"target_file":"f","pattern":"(","replacement":"y"}]}`, want: "Invalid field: edits[0].pattern: error parsing regexp: missing closing ): `(`", field: "edits[0].pattern"},
		{name: "edits element bad diff", body: `{"id":"a","role":"r","edits":[{"diff":"nothing"}]}`, want: "Invalid field: edits[0].diff: no file changes found; a diff needs --- a/path and +++ b/path lines followed by @@ hunks", field: "edits[0].diff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse(%.200q) = %+v, want error %q", tt.body, b, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%.200q) error = %q, want %q", tt.body, err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field() != tt.field {
				t.Errorf("Parse(%.200q) error = %#v, want a *FieldError for %s", tt.body, err, tt.field)
			}
		})
	}
}

// jsonText escapes s for a JSON string literal written by hand.
func jsonText(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s)
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		formats []string
		targets []string
		patch   Regex // the compatibility field
	}{
		{name: "regex", body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"}}`, formats: []string{"regex"}, targets: []string{"f"}, patch: Regex{Pattern: "x", Replacement: "y"}},
		{name: "search", body: `{"id":"a","role":"r","target_file":"src/f.go","patch":{"search":"x","replace":"y","all":true}}`, formats: []string{"search_replace"}, targets: []string{"src/f.go"}},
		{name: "empty search", body: `{"id":"a","role":"r","target_file":"new.txt","patch":{"search":"","replace":"hello\n"}}`, formats: []string{"search_replace"}, targets: []string{"new.txt"}},
		{name: "diff", body: `{"id":"a","role":"r","patch":{"diff":"` + jsonText(okDiff) + `"}}`, formats: []string{"diff"}, targets: []string{"f"}},
		{name: "diff with target_file", body: `{"id":"a","role":"r","target_file":"g","patch":{"diff":"@@ -1 +1 @@\n-a\n+b\n"}}`, formats: []string{"diff"}, targets: []string{"g"}},
		{name: "diff as string", body: `{"id":"a","role":"r","patch":"` + jsonText(okDiff) + `"}`, formats: []string{"diff"}, targets: []string{"f"}},
		{name: "apply_patch", body: `{"id":"a","role":"r","patch":{"apply_patch":"` + jsonText(okAP) + `"}}`, formats: []string{"apply_patch"}, targets: []string{"f"}},
		{name: "apply_patch as string", body: `{"id":"a","role":"r","patch":"` + jsonText(okAP) + `"}`, formats: []string{"apply_patch"}, targets: []string{"f"}},
		{
			name: "rename and move targets",
			body: `{"id":"a","role":"r","edits":[
				{"diff":"` + jsonText("diff --git a/x b/y\nrename from x\nrename to y\n") + `"},
				{"apply_patch":"` + jsonText("*** Begin Patch\n*** Update File: ./y\n*** Move to: z/\n@@\n-a\n+b\n*** Add File: w\n+w\n*** Delete File: x\n*** End Patch") + `"}]}`,
			formats: []string{"diff", "apply_patch"}, targets: []string{"x", "y", "z", "w"},
		},
		{
			name: "edits with default and own target_file",
			body: `{"id":"a","role":"r","target_file":"f","edits":[
				{"search":"a","replace":"b"},
				{"target_file":"g","pattern":"(a)","replacement":"$1","expand":true},
				{"diff":"@@ -1 +1 @@\n-a\n+b\n"}]}`,
			formats: []string{"search_replace", "regex", "diff"}, targets: []string{"f", "g"},
		},
		{name: "edits without target_file", body: `{"id":"a","role":"r","edits":[{"diff":"` + jsonText(okDiff) + `"}]}`, formats: []string{"diff"}, targets: []string{"f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse(%.200q) error = %v", tt.body, err)
			}
			var formats []string
			for _, e := range b.Edits {
				formats = append(formats, e.Format())
			}
			if !reflect.DeepEqual(formats, tt.formats) {
				t.Errorf("Parse(%.200q) formats = %q, want %q", tt.body, formats, tt.formats)
			}
			if got := b.Targets(); !reflect.DeepEqual(got, tt.targets) {
				t.Errorf("Parse(%.200q).Targets() = %q, want %q", tt.body, got, tt.targets)
			}
			if b.Patch != tt.patch {
				t.Errorf("Parse(%.200q).Patch = %+v, want %+v", tt.body, b.Patch, tt.patch)
			}
		})
	}
}

func TestZeroPatchApplyFails(t *testing.T) {
	b, err := Parse([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"search":"x","replace":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, n, err := b.Patch.Apply("f", []byte("x")); err == nil {
		t.Errorf("Patch.Apply of a search/replace block = %q, %d, want an error", out, n)
	}
}
