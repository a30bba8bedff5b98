package patch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// planBody parses a webhook body and plans it against a workspace.
func planBody(t *testing.T, body string, tree map[string][]byte) ([]Change, error) {
	t.Helper()
	b, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse(%q) error = %v", body, err)
	}
	return b.Plan(treeReader(tree))
}

func TestPlanIsAllOrNothing(t *testing.T) {
	tree := map[string][]byte{"a.txt": []byte("one\n"), "b.txt": []byte("two\n")}
	body := `{"id":"x","role":"r","edits":[
		{"target_file":"a.txt","search":"one","replace":"ONE"},
		{"apply_patch":"*** Begin Patch\n*** Add File: c.txt\n+three\n*** End Patch"},
		{"target_file":"b.txt","search":"twelve","replace":"TWELVE"}]}`
	changes, err := planBody(t, body, tree)
	if changes != nil {
		t.Errorf("Plan = %+v, want no changes", changes)
	}
	var me *MatchError
	if !errors.As(err, &me) || !strings.HasPrefix(err.Error(), "edits[2]: search text not found in b.txt:") {
		t.Errorf("Plan error = %v, want edits[2]'s *MatchError", err)
	}
	if string(tree["a.txt"]) != "one\n" || tree["c.txt"] != nil {
		t.Errorf("Plan changed the workspace: %q", tree)
	}
}

func TestPlanChanges(t *testing.T) {
	tree := map[string][]byte{
		"keep.txt":  []byte("same\n"),
		"empty.txt": {},
		"old.txt":   []byte("old\n"),
		"mv.txt":    []byte("moving\n"),
	}
	body := `{"id":"x","role":"r","edits":[
		{"target_file":"keep.txt","search":"same","replace":"same"},
		{"target_file":"empty.txt","search":"","replace":"filled\n"},
		{"diff":"diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n"},
		{"apply_patch":"*** Begin Patch\n*** Update File: mv.txt\n*** Move to: tmp.txt\n*** Add File: new.txt\n+new\n*** End Patch"},
		{"diff":"diff --git a/tmp.txt b/dir/moved.txt\nrename from tmp.txt\nrename to dir/moved.txt\n"}]}`
	changes, err := planBody(t, body, tree)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Path: "empty.txt", Old: []byte{}, New: []byte("filled\n"), Existed: true},
		{Path: "old.txt", Old: []byte("old\n"), Existed: true, Deleted: true},
		{Path: "mv.txt", Old: []byte("moving\n"), Existed: true, Deleted: true},
		{Path: "new.txt", New: []byte("new\n")},
		{Path: "dir/moved.txt", New: []byte("moving\n"), RenamedFrom: "mv.txt"},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("Plan =\n%+v\nwant\n%+v", changes, want)
	}
}

func TestPlanReadsOnce(t *testing.T) {
	reads := map[string]int{}
	body := `{"id":"x","role":"r","target_file":"f","edits":[
		{"search":"a","replace":"b"},{"search":"b","replace":"c"},{"pattern":"c","replacement":"d"},
		{"target_file":"./f","search":"d","replace":"e"}]}`
	b, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := b.Plan(func(p string) ([]byte, bool, error) {
		reads[p]++
		return []byte("a\n"), true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || string(changes[0].New) != "e\n" {
		t.Errorf("Plan = %+v, want f changed to e", changes)
	}
	if !reflect.DeepEqual(reads, map[string]int{"f": 1}) {
		t.Errorf("reads = %v, want f once", reads)
	}
}

func TestPlanReadError(t *testing.T) {
	b, err := Parse([]byte(`{"id":"x","role":"r","target_file":"f","patch":{"search":"a","replace":"b"}}`))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("permission denied")
	_, err = b.Plan(func(string) ([]byte, bool, error) { return nil, false, boom })
	if !errors.Is(err, boom) || err.Error() != "read f: permission denied" {
		t.Errorf("Plan error = %v, want read f: permission denied", err)
	}
}

func TestPlanRefusals(t *testing.T) {
	tree := map[string][]byte{"a": []byte("x\ny\n"), "b": []byte("b\n"), "e": {}}
	ap := func(body string) string {
		return `{"id":"x","role":"r","patch":{"apply_patch":"*** Begin Patch\n` + body + `*** End Patch"}}`
	}
	diff := func(text string) string { return `{"id":"x","role":"r","patch":{"diff":"` + jsonText(text) + `"}}` }
	tests := []struct {
		name, body, want string
	}{
		{name: "update a missing file", body: ap(`*** Update File: nope\n@@\n-a\n`), want: "cannot update nope: it does not exist"},
		{name: "delete a missing file", body: ap(`*** Delete File: nope\n`), want: "cannot delete nope: it does not exist"},
		{name: "add over a file", body: ap(`*** Add File: a\n+other\n`), want: "cannot create a: it already exists"},
		{name: "move onto a file", body: ap(`*** Update File: a\n*** Move to: b\n`), want: "cannot move a to b: b already exists"},
		{name: "regex on a missing file", body: `{"id":"x","role":"r","target_file":"nope","patch":{"pattern":"a","replacement":"b"}}`, want: "target file nope does not exist"},
		{name: "regex not found", body: `{"id":"x","role":"r","target_file":"a","patch":{"pattern":"z","replacement":"b"}}`, want: "pattern not found in a"},
		{name: "search on a missing file", body: `{"id":"x","role":"r","target_file":"nope","patch":{"search":"a","replace":"b"}}`, want: "target file nope does not exist"},
		{name: "empty search on a file", body: `{"id":"x","role":"r","target_file":"a","patch":{"search":"","replace":"b"}}`, want: "search text is empty but a exists and is not empty; give the text to replace"},
		{name: "partial deletion", body: diff("--- a/a\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"), want: "cannot delete a: the diff removes only some of its lines (1 remain); remove them all or use *** Delete File"},
		{name: "insertion past the end", body: diff("--- a/a\n+++ b/a\n@@ -9,0 +10 @@\n+z\n"), want: "diff hunk 1 (@@ -9,0 +10 @@) of a adds lines after line 9, but the file has 2 lines; add context lines"},
		{name: "insertion without numbers", body: diff("--- a/a\n+++ b/a\n@@ @@\n+z\n"), want: "diff hunk 1 (@@ @@) of a only adds lines and has no line numbers to place them; add context lines"},
		{name: "anchor not found", body: ap(`*** Update File: a\n@@ def nope():\n-x\n`), want: "@@ anchor line of apply_patch hunk 1 (@@ def nope():) not found in a:\n  def nope():\nno similar lines in the file (2 lines)"},
		{name: "end of file", body: ap(`*** Update File: a\n@@\n-x\n*** End of File\n`), want: "apply_patch hunk 1 not found at the end of a:\n  x\nclosest match (line 1, 100% similar):\n  1| x"},
		{name: "hunk in an empty file", body: ap(`*** Update File: e\n@@\n-x\n`), want: "apply_patch hunk 1 not found in e:\n  x\nthe file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := planBody(t, tt.body, tree)
			if err == nil {
				t.Fatalf("Plan(%s) = %+v, want error %q", tt.body, changes, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Plan(%s) error =\n%s\nwant\n%s", tt.body, err, tt.want)
			}
		})
	}
}

func TestSearchReplace(t *testing.T) {
	tests := []struct {
		name    string
		content string
		e       SearchReplace
		want    string
	}{
		{name: "substring", content: "a = 1\nb = 2\n", e: SearchReplace{Search: "= 2", Replace: "= 3"}, want: "a = 1\nb = 3\n"},
		{name: "crlf file keeps crlf", content: "a\r\nb\r\n", e: SearchReplace{Search: "b", Replace: "b\nc"}, want: "a\r\nb\r\nc\r\n"},
		{name: "crlf text in an lf file", content: "a\nb\n", e: SearchReplace{Search: "a\r\nb\r\n", Replace: "a\r\nB\r\n"}, want: "a\nB\n"},
		{name: "replacement gets the search's final newline", content: "a\nb\nc\n", e: SearchReplace{Search: "b\n", Replace: "B"}, want: "a\nB\nc\n"},
		{name: "replacement loses a newline the search lacks", content: "a\nb\nc\n", e: SearchReplace{Search: "b", Replace: "B\n"}, want: "a\nB\nc\n"},
		{name: "deletion", content: "a\nb\nc\n", e: SearchReplace{Search: "b\n", Replace: ""}, want: "a\nc\n"},
		{name: "line deletion, loose", content: "a\n  b  \nc\n", e: SearchReplace{Search: "  b\n", Replace: ""}, want: "a\nc\n"},
		{name: "all, exact", content: "x x\nx\n", e: SearchReplace{Search: "x", Replace: "y", All: true}, want: "y y\ny\n"},
		{name: "all, each place re-indented", content: "if a:\n    f(1)\n        f(1)\n", e: SearchReplace{Search: "f(1) \n", Replace: "f(2)\ng()\n", All: true}, want: "if a:\n    f(2)\n    g()\n        f(2)\n        g()\n"},
		{name: "unchanged context keeps trailing whitespace", content: "def f():  \n    return 1\n", e: SearchReplace{Search: "def f():\n    return 1\n", Replace: "def f():\n    return 2\n"}, want: "def f():  \n    return 2\n"},
		{name: "last line without newline", content: "a\nb", e: SearchReplace{Search: "b\n", Replace: "c\nd\n"}, want: "a\nc\nd"},
		{name: "empty file filled", content: "", e: SearchReplace{Search: "", Replace: "x\n"}, want: "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			e.TargetFile = "f"
			changes, err := planOne(&e, []byte(tt.content))
			if err != nil {
				t.Fatalf("%+v on %q: %v", tt.e, tt.content, err)
			}
			if len(changes) != 1 || string(changes[0].New) != tt.want {
				t.Errorf("%+v on %q = %+v, want %q", tt.e, tt.content, changes, tt.want)
			}
		})
	}
}
