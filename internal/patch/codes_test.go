package patch

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// codeOf is what a layer above reads of an error: the code and the field
// of the first errors in its chain that have them.
func codeOf(err error) (code, field string) {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		code = c.Code()
	}
	var f interface{ Field() string }
	if errors.As(err, &f) {
		field = f.Field()
	}
	return code, field
}

// TestParseCodes: every refusal of Parse has a code, and the field the
// message names.
func TestParseCodes(t *testing.T) {
	tests := []struct {
		name, body  string
		code, field string
	}{
		{"empty body", ``, CodeJSONMalformed, ""},
		{"bad json", `{"id":`, CodeJSONMalformed, ""},
		{"not an object", `[1]`, CodeJSONMalformed, ""},
		{"no id", `{"role":"r"}`, CodeFieldMissing, "id"},
		{"no role", `{"id":"a"}`, CodeFieldMissing, "role"},
		{"no target", `{"id":"a","role":"r","patch":{"pattern":"x","replacement":"y"}}`, CodeFieldMissing, "target_file"},
		{"no patch", `{"id":"a","role":"r","target_file":"f"}`, CodeFieldMissing, "patch"},
		{"bad id", `{"id":"a/b","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"}}`, CodeFieldInvalid, "id"},
		{"role type", `{"id":"a","role":1,"target_file":"f","patch":{"pattern":"x","replacement":"y"}}`, CodeFieldInvalid, "role"},
		{"bad pattern", `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"(","replacement":"y"}}`, CodeFieldInvalid, "patch.pattern"},
		{"no replacement", `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x"}}`, CodeFieldMissing, "patch.replacement"},
		{"search type", `{"id":"a","role":"r","edits":[{"target_file":"f","search":"x","replace":"y"},{"target_file":"f","search":1,"replace":"y"}]}`, CodeFieldInvalid, "edits[1].search"},
		{"element target type", `{"id":"a","role":"r","edits":[{"target_file":2,"search":"x","replace":"y"}]}`, CodeFieldInvalid, "edits[0].target_file"},
		{"element without target", `{"id":"a","role":"r","edits":[{"search":"x","replace":"y"}]}`, CodeFieldMissing, "edits[0].target_file"},
		{"both patch and edits", `{"id":"a","role":"r","patch":{"diff":"@@ -1 +1 @@\n-a\n+b\n"},"edits":[{"diff":"x"}]}`, CodeFieldInvalid, "edits"},
		{"bad diff", `{"id":"a","role":"r","patch":{"diff":"--- a/f\n+++ b/f\n"}}`, CodeFieldInvalid, "patch.diff"},
		{"bad apply_patch", `{"id":"a","role":"r","patch":{"apply_patch":"*** Begin Patch\n*** Update File: f\n"}}`, CodeFieldInvalid, "patch.apply_patch"},
		{"bad aider text", `{"id":"a","role":"r","patch":{"text":"f\n<<<<<<< SEARCH\nx\n"}}`, CodeFieldInvalid, "patch.text"},
		{"bad tag", `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"},"tag":"-x"}`, CodeFieldInvalid, "tag"},
		{"too many edits", `{"id":"a","role":"r","edits":[` + strings.Repeat(`{"target_file":"f","search":"x","replace":"y"},`, MaxEdits) + `{"target_file":"f","search":"x","replace":"y"}]}`, CodeTooManyEdits, "edits"},
		{"too many aider blocks", `{"id":"a","role":"r","patch":{"text":"` + strings.Repeat(`f\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n`, MaxEdits+1) + `"}}`, CodeTooManyEdits, "patch.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse(%.100q) = nil error, want %s", tt.body, tt.code)
			}
			if code, field := codeOf(err); code != tt.code || field != tt.field {
				t.Errorf("Parse(%.100q) error %q: code %q, field %q; want %q, %q", tt.body, err, code, field, tt.code, tt.field)
			}
		})
	}
}

// TestPlanCodes: every refusal of planning has a code, and names the
// member of the block at fault; the messages are unchanged.
func TestPlanCodes(t *testing.T) {
	tree := map[string][]byte{"a.txt": []byte("one\ntwo\none\n"), "b.txt": []byte("b\n"), "dir/x": []byte("x\n")}
	tests := []struct {
		name, body  string
		lim         Limits
		code, field string
		msg         string // the message's start
	}{
		{name: "regex not found", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"pattern":"zzz","replacement":"y"}}`,
			code: CodeMatchNotFound, field: "patch.pattern", msg: "pattern not found in a.txt"},
		{name: "regex missing file", body: `{"id":"a","role":"r","target_file":"no.txt","patch":{"pattern":"x","replacement":"y"}}`,
			code: CodeFileNotFound, field: "target_file", msg: "target file no.txt does not exist"},
		{name: "search not found", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"search":"three","replace":"y"}}`,
			code: CodeMatchNotFound, field: "patch.search", msg: "search text not found in a.txt"},
		{name: "search ambiguous", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"search":"one","replace":"y"}}`,
			code: CodeMatchAmbiguous, field: "patch.search", msg: "search text matches 2 places in a.txt"},
		{name: "search in edits", body: `{"id":"a","role":"r","edits":[{"target_file":"b.txt","search":"b","replace":"c"},{"target_file":"a.txt","search":"zzz","replace":"y"}]}`,
			code: CodeMatchNotFound, field: "edits[1].search", msg: "edits[1]: search text not found in a.txt"},
		{name: "search missing file, own target", body: `{"id":"a","role":"r","edits":[{"target_file":"no.txt","search":"x","replace":"y"}]}`,
			code: CodeFileNotFound, field: "edits[0].target_file", msg: "edits[0]: target file no.txt does not exist"},
		{name: "create over content", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"search":"","replace":"y"}}`,
			code: CodeFileExists, field: "target_file", msg: "search text is empty but a.txt exists"},
		{name: "hunk not found", body: `{"id":"a","role":"r","patch":{"diff":"--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-zzz\n+c\n"}}`,
			code: CodeMatchNotFound, field: "patch.diff", msg: "diff hunk 1 (@@ -1 +1 @@) not found in b.txt"},
		{name: "hunk ambiguous", body: `{"id":"a","role":"r","patch":{"diff":"--- a/a.txt\n+++ b/a.txt\n@@ @@\n-one\n+ONE\n"}}`,
			code: CodeMatchAmbiguous, field: "patch.diff", msg: "diff hunk 1 (@@ @@) matches 2 places in a.txt"},
		{name: "hunk only adds, mid file", body: `{"id":"a","role":"r","patch":{"diff":"--- a/a.txt\n+++ b/a.txt\n@@ -1,0 +2 @@\n+new\n"}}`,
			code: CodeHunkFailed, field: "patch.diff", msg: "diff hunk 1 (@@ -1,0 +2 @@) of a.txt only adds lines"},
		{name: "diff creates existing", body: `{"id":"a","role":"r","patch":{"diff":"--- /dev/null\n+++ b/b.txt\n@@ -0,0 +1 @@\n+new\n"}}`,
			code: CodeFileExists, field: "patch.diff", msg: "cannot create b.txt: it already exists"},
		{name: "diff deletes missing", body: `{"id":"a","role":"r","patch":{"diff":"--- a/no.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"}}`,
			code: CodeFileNotFound, field: "patch.diff", msg: "cannot delete no.txt: it does not exist"},
		{name: "diff updates missing", body: `{"id":"a","role":"r","patch":{"diff":"--- a/no.txt\n+++ b/no.txt\n@@ -1 +1 @@\n-x\n+y\n"}}`,
			code: CodeFileNotFound, field: "patch.diff", msg: "cannot update no.txt: it does not exist"},
		{name: "partial delete", body: `{"id":"a","role":"r","patch":{"diff":"--- a/a.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-one\n"}}`,
			code: CodeHunkFailed, field: "patch.diff", msg: "cannot delete a.txt: the diff removes only some of its lines"},
		{name: "move onto existing", body: `{"id":"a","role":"r","patch":{"apply_patch":"*** Begin Patch\n*** Update File: b.txt\n*** Move to: a.txt\n@@\n-b\n+c\n*** End Patch"}}`,
			code: CodeFileExists, field: "patch.apply_patch", msg: "cannot move b.txt to a.txt: a.txt already exists"},
		{name: "apply_patch anchor not found", body: `{"id":"a","role":"r","patch":{"apply_patch":"*** Begin Patch\n*** Update File: b.txt\n@@ zzz\n-b\n+c\n*** End Patch"}}`,
			code: CodeMatchNotFound, field: "patch.apply_patch", msg: "@@ anchor line of apply_patch hunk 1"},
		{name: "aider block not found", body: `{"id":"a","role":"r","patch":{"text":"b.txt\n<<<<<<< SEARCH\nzzz\n=======\ny\n>>>>>>> REPLACE\n"}}`,
			code: CodeMatchNotFound, field: "patch.text", msg: "block 1 (line 2): search text not found in b.txt"},
		{name: "bare diff string", body: `{"id":"a","role":"r","edits":[{"diff":"--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-b\n+c\n"},"--- a/no.txt\n+++ b/no.txt\n@@ -1 +1 @@\n-x\n+y\n"]}`,
			code: CodeFileNotFound, field: "edits[1]", msg: "edits[1]: cannot update no.txt: it does not exist"},
		{name: "file limit", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"pattern":"one","replacement":"oneoneoneone"}}`, lim: Limits{MaxFileBytes: 16},
			code: CodeFileTooLarge, field: "", msg: "a.txt would grow past 16 bytes"},
		{name: "file limit on read", body: `{"id":"a","role":"r","target_file":"a.txt","patch":{"pattern":"one","replacement":"1"}}`, lim: Limits{MaxFileBytes: 4},
			code: CodeFileTooLarge, field: "", msg: "a.txt is 12 bytes, larger than 4 bytes"},
		{name: "patch limit", body: `{"id":"a","role":"r","edits":[{"target_file":"a.txt","search":"two","replace":"2"},{"target_file":"b.txt","search":"b","replace":"c"}]}`, lim: Limits{MaxPatchBytes: 13},
			code: CodePatchTooLarge, field: "", msg: "edits[0]: the patch would hold more than 13 bytes of file content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.body, err)
			}
			_, err = b.PlanWithin(t.Context(), treeReader(tree), nil, tt.lim)
			if err == nil {
				t.Fatalf("Plan(%q) = nil error, want %s", tt.body, tt.code)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("Plan(%q) error %q, want it to start with %q", tt.body, err, tt.msg)
			}
			if code, field := codeOf(err); code != tt.code || field != tt.field {
				t.Errorf("Plan(%q) error %q: code %q, field %q; want %q, %q", tt.body, err, code, field, tt.code, tt.field)
			}
		})
	}
}

// TestPlanKeepsReaderCodes: a reader's refusal (the workspace's, with its
// own code) keeps its code, named by the edit's target_file; deleting a
// directory is path_not_regular.
func TestPlanKeepsReaderCodes(t *testing.T) {
	refused := &codedError{code: "path_protected", err: errors.New(`path ".patchd/token": refers to patchd's state directory ".patchd"`)}
	read := func(p string) ([]byte, bool, error) {
		if p == "dir" {
			return nil, false, syscall.EISDIR
		}
		return nil, false, refused
	}
	b, err := Parse([]byte(`{"id":"a","role":"r","target_file":".patchd/token","patch":{"search":"x","replace":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Plan(read)
	if code, field := codeOf(err); code != "path_protected" || field != "target_file" || !errors.Is(err, refused) {
		t.Errorf("Plan error %q: code %q, field %q; want path_protected, target_file, wrapping the reader's", err, code, field)
	}
	b, err = Parse([]byte(`{"id":"a","role":"r","patch":{"diff":"--- a/dir\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Plan(read)
	if code, field := codeOf(err); code != CodePathNotRegular || field != "patch.diff" {
		t.Errorf("Plan error %q: code %q, field %q; want %s, patch.diff", err, code, field, CodePathNotRegular)
	}
}
