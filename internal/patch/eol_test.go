package patch

import (
	"encoding/json"
	"testing"
)

// planPatch plans a block whose "patch" is the given JSON object against a
// workspace holding file f with content (nil: no file f).
func planPatch(t *testing.T, patchObj map[string]any, content []byte) ([]Change, error) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": "x", "role": "r", "target_file": "f", "patch": patchObj})
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string][]byte{}
	if content != nil {
		tree["f"] = content
	}
	return planBody(t, string(body), tree)
}

// TestLineEndingsNeverLeak checks that no format writes the line endings of
// the patch text into a file: an existing file keeps its own style, and a
// new file is CRLF only when every line the patch gives it is (finding 11).
func TestLineEndingsNeverLeak(t *testing.T) {
	crlfDiff := "--- a/f\r\n+++ b/f\r\n@@ -1,3 +1,4 @@\r\n a\r\n b\r\n+x\r\n c\r\n"
	tests := []struct {
		name    string
		patch   map[string]any
		content string // "" with create: no file
		create  bool
		want    string
	}{
		{name: "crlf diff, lf file", patch: map[string]any{"diff": crlfDiff}, content: "a\nb\nc\n", want: "a\nb\nx\nc\n"},
		{name: "crlf diff, crlf file", patch: map[string]any{"diff": crlfDiff}, content: "a\r\nb\r\nc\r\n", want: "a\r\nb\r\nx\r\nc\r\n"},
		{name: "lf diff, crlf file", patch: map[string]any{"diff": "--- a/f\n+++ b/f\n@@ -1,3 +1,4 @@\n a\n b\n+x\n c\n"}, content: "a\r\nb\r\nc\r\n", want: "a\r\nb\r\nx\r\nc\r\n"},
		{name: "crlf diff, lf file, line replaced at the end", patch: map[string]any{"diff": "--- a/f\r\n+++ b/f\r\n@@ -2,2 +2,3 @@\r\n b\r\n-c\r\n+C\r\n+d\r\n"}, content: "a\nb\nc\n", want: "a\nb\nC\nd\n"},
		{name: "crlf diff, no newline marker", patch: map[string]any{"diff": "--- a/f\r\n+++ b/f\r\n@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+c\r\n\\ No newline at end of file\r\n"}, content: "a\nb\n", want: "a\nc"},
		{name: "crlf diff creates a crlf file", patch: map[string]any{"diff": "--- /dev/null\r\n+++ b/f\r\n@@ -0,0 +1,2 @@\r\n+a\r\n+b\r\n"}, create: true, want: "a\r\nb\r\n"},
		{name: "git diff of a crlf file creates it crlf", patch: map[string]any{"diff": "--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\r\n+b\r\n"}, create: true, want: "a\r\nb\r\n"},
		{name: "mixed diff creates an lf file", patch: map[string]any{"diff": "--- /dev/null\r\n+++ b/f\r\n@@ -0,0 +1,2 @@\r\n+a\r\n+b\n"}, create: true, want: "a\nb\n"},
		{name: "crlf apply_patch, lf file", patch: map[string]any{"apply_patch": "*** Begin Patch\r\n*** Update File: f\r\n@@\r\n a\r\n+x\r\n b\r\n*** End Patch\r\n"}, content: "a\nb\n", want: "a\nx\nb\n"},
		{name: "crlf apply_patch adds an lf file", patch: map[string]any{"apply_patch": "*** Begin Patch\r\n*** Add File: f\r\n+a\r\n+b\r\n*** End Patch\r\n"}, create: true, want: "a\nb\n"},
		{name: "crlf search/replace, lf file", patch: map[string]any{"search": "a\r\n", "replace": "a\r\nx\r\n"}, content: "a\nb\n", want: "a\nx\nb\n"},
		{name: "crlf search/replace, loose match, lf file", patch: map[string]any{"search": "a  \r\nb\r\n", "replace": "a\r\nx\r\nb\r\n"}, content: "a\nb\n", want: "a\nx\nb\n"},
		{name: "mixed search/replace creates an lf file", patch: map[string]any{"search": "", "replace": "a\r\nb\n"}, create: true, want: "a\nb\n"},
		{name: "crlf search/replace creates a crlf file", patch: map[string]any{"search": "", "replace": "a\r\nb\r\n"}, create: true, want: "a\r\nb\r\n"},
		{name: "crlf regex replacement, lf file", patch: map[string]any{"pattern": "b\n", "replacement": "b\r\nx\r\n"}, content: "a\nb\n", want: "a\nb\nx\n"},
		{name: "lf regex replacement, crlf file", patch: map[string]any{"pattern": "b\r\n", "replacement": "b\nx\n"}, content: "a\r\nb\r\n", want: "a\r\nb\r\nx\r\n"},
		{name: "expanded regex replacement, lf file", patch: map[string]any{"pattern": "(b)", "replacement": "$1\r\nx", "expand": true}, content: "a\nb\n", want: "a\nb\nx\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var content []byte
			if !tt.create {
				content = []byte(tt.content)
			}
			changes, err := planPatch(t, tt.patch, content)
			if err != nil {
				t.Fatalf("Plan(%q) on %q: %v", tt.patch, tt.content, err)
			}
			if len(changes) != 1 || string(changes[0].New) != tt.want {
				t.Errorf("Plan(%q) on %q = %+v, want %q", tt.patch, tt.content, changes, tt.want)
			}
		})
	}
}
