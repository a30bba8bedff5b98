package patch

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestIntakeShapes: the shapes agents nest their edits in are read as the
// forms they stand for, and report every file they touch (the service
// confines each of Targets).
func TestIntakeShapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		formats []string
		targets []string
	}{
		{
			name:    "patch.edits",
			body:    `{"id":"a","role":"r","target_file":"f","patch":{"edits":[{"search":"a","replace":"b"},{"diff":"` + jsonText(okDiff) + `"},{"target_file":"g","pattern":"x","replacement":"y"}]}}`,
			formats: []string{"search_replace", "diff", "regex"}, targets: []string{"f", "g"},
		},
		{
			name:    "patch.edits with its own target_file",
			body:    `{"id":"a","role":"r","target_file":"f","patch":{"target_file":"h","edits":[{"search":"a","replace":"b"}]}}`,
			formats: []string{"search_replace"}, targets: []string{"h"},
		},
		{
			name:    "patch.edits named with an escape",
			body:    `{"id":"a","role":"r","target_file":"f","patch":{"ed\u0069ts":[{"search":"a","replace":"b"}]}}`,
			formats: []string{"search_replace"}, targets: []string{"f"},
		},
		{
			name:    "patch as a list",
			body:    `{"id":"a","role":"r","patch":[{"target_file":"f","search":"a","replace":"b"},{"apply_patch":"` + jsonText(okAP) + `"}]}`,
			formats: []string{"search_replace", "apply_patch"}, targets: []string{"f"},
		},
		{
			name:    "patch as a list of texts",
			body:    `{"id":"a","role":"r","patch":["` + jsonText(okDiff) + `","` + jsonText("g.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n") + `"]}`,
			formats: []string{"diff", "aider"}, targets: []string{"f", "g.py"},
		},
		{
			name:    "old_string and new_string",
			body:    `{"id":"a","role":"r","target_file":"f","patch":{"old_string":"a","new_string":"b","replace_all":true}}`,
			formats: []string{"search_replace"}, targets: []string{"f"},
		},
		{
			name:    "aider text, path inside the fence",
			body:    `{"id":"a","role":"r","patch":{"text":"` + jsonText("```python\nsrc/a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n```python\n../b.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n") + `"}}`,
			formats: []string{"aider"}, targets: []string{"src/a.py", "../b.py"},
		},
		{
			name:    "aider bare string in patch.edits",
			body:    `{"id":"a","role":"r","patch":{"edits":["` + jsonText("a.py\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n.git/config\n```\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE\n```\n") + `"]}}`,
			formats: []string{"aider"}, targets: []string{"a.py", ".git/config"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse(%.300q) error = %v", tt.body, err)
			}
			var formats []string
			for _, e := range b.Edits {
				formats = append(formats, e.Format())
			}
			if !reflect.DeepEqual(formats, tt.formats) {
				t.Errorf("formats = %q, want %q", formats, tt.formats)
			}
			if got := b.Targets(); !reflect.DeepEqual(got, tt.targets) {
				t.Errorf("Targets() = %q, want %q", got, tt.targets)
			}
		})
	}
}

// TestIntakeOldStringAll: replace_all is old_string's "all".
func TestIntakeOldStringAll(t *testing.T) {
	b, err := Parse([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"old_string":"a","new_string":"b","replace_all":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	sr, ok := b.Edits[0].(*SearchReplace)
	if !ok || sr.Search != "a" || sr.Replace != "b" || !sr.All {
		t.Fatalf("edit = %#v, want search a, replace b, all", b.Edits[0])
	}
}

// The forms of edit, as refusals list them.
const (
	wantEditMembers  = `"pattern" and "replacement" (a regex edit), "search" and "replace" (or "old_string" and "new_string"), "diff" (a unified diff), "apply_patch" or "text" (aider SEARCH/REPLACE blocks)`
	wantStringShapes = `a string is read only as a unified diff (--- and +++ lines, @@ hunks), an apply_patch text (*** Begin Patch … *** End Patch) or aider SEARCH/REPLACE blocks (a path line, <<<<<<< SEARCH, =======, >>>>>>> REPLACE), and this is none of them; an edit object holds ` + wantEditMembers
)

// TestIntakeShapeErrors: a block whose shape cannot be read is refused
// saying what shape was expected, with the code and field of the member
// at fault, never an unrelated missing field.
func TestIntakeShapeErrors(t *testing.T) {
	sr := `{"search":"a","replace":"b"}`
	tests := []struct {
		name, body, want, field, code string
		opts                          ParseOptions
	}{
		{name: "edits and patch.edits", body: `{"id":"a","role":"r","target_file":"f","edits":[` + sr + `],"patch":{"edits":[` + sr + `]}}`,
			want: `Invalid field: edits: a block holds its list of edits in "edits" or in "patch.edits", not both`, field: "edits", code: CodeFieldInvalid},
		{name: "edits and patch list", body: `{"id":"a","role":"r","target_file":"f","edits":[` + sr + `],"patch":[` + sr + `]}`,
			want: `Invalid field: edits: a block holds its list of edits in "edits" or in "patch" (a list), not both`, field: "edits", code: CodeFieldInvalid},
		{name: "patch.edits with an edit's members", body: `{"id":"a","role":"r","target_file":"f","patch":{"edits":[` + sr + `],"search":"x","replace":"y"}}`,
			want: `Invalid field: patch: holds "edits" and the members of one edit (search, replace); send one edit, or "edits", a list of edits`, field: "patch", code: CodeFieldInvalid},
		{name: "patch.edits null", body: `{"id":"a","role":"r","target_file":"f","patch":{"edits":null}}`,
			want: `Missing required field: patch.edits`, field: "patch.edits", code: CodeFieldMissing},
		{name: "patch.edits empty", body: `{"id":"a","role":"r","target_file":"f","patch":{"edits":[]}}`,
			want: `Invalid field: patch.edits: must hold at least one edit`, field: "patch.edits", code: CodeFieldInvalid},
		{name: "patch.edits element without target", body: `{"id":"a","role":"r","patch":{"edits":[` + sr + `]}}`,
			want: `Missing required field: patch.edits[0].target_file`, field: "patch.edits[0].target_file", code: CodeFieldMissing},
		{name: "patch list element bad", body: `{"id":"a","role":"r","patch":[{"target_file":"f","search":1,"replace":"b"}]}`,
			want: `Invalid field: patch[0].search: must be a string, not a number`, field: "patch[0].search", code: CodeFieldInvalid},
		{name: "nested edits", body: `{"id":"a","role":"r","edits":[{"edits":[` + sr + `]}]}`,
			want: `Invalid field: edits[0]: holds "edits": lists of edits do not nest; put its edits in the outer list`, field: "edits[0]", code: CodeFieldInvalid},
		{name: "patch.edits too many", body: `{"id":"a","role":"r","target_file":"f","patch":{"edits":[` + sr + `,` + sr + `,` + sr + `]}}`, opts: ParseOptions{MaxEdits: 2},
			want: `Invalid field: patch.edits: holds more than 2 edits`, field: "patch.edits", code: CodeTooManyEdits},
		{name: "patch list too many", body: `{"id":"a","role":"r","target_file":"f","patch":[` + sr + `,` + sr + `,` + sr + `]}`, opts: ParseOptions{MaxEdits: 2},
			want: `Invalid field: patch: holds more than 2 edits`, field: "patch", code: CodeTooManyEdits},
		{name: "patch list aider blocks too many", body: `{"id":"a","role":"r","patch":[` + sr[:0] + `"` + jsonText(strings.Repeat("f\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", 3)) + `"]}`, opts: ParseOptions{MaxEdits: 2},
			want: `Invalid field: patch[0]: holds more edit blocks than the 2 edits of a block allow (each block counts one, with the other edits)`, field: "patch[0]", code: CodeTooManyEdits},

		// Strings that are no text patchd reads.
		{name: "patch string without target_file", body: `{"id":"a","role":"r","patch":"-old\n+new\n"}`,
			want: `Invalid field: patch: ` + wantStringShapes, field: "patch", code: CodeFieldInvalid},
		{name: "patch string with target_file", body: `{"id":"a","role":"r","target_file":"f","patch":"s/a/b/"}`,
			want: `Invalid field: patch: ` + wantStringShapes, field: "patch", code: CodeFieldInvalid},
		{name: "patch list of strings", body: `{"id":"a","role":"r","target_file":"f","patch":["s/a/b/"]}`,
			want: `Invalid field: patch[0]: ` + wantStringShapes, field: "patch[0]", code: CodeFieldInvalid},
		{name: "patch number", body: `{"id":"a","role":"r","target_file":"f","patch":5}`,
			want: `Invalid field: patch: must be an object (one edit) or an array (a list of edits), not a number`, field: "patch", code: CodeFieldInvalid},
		{name: "cut-short aider string", body: `{"id":"a","role":"r","patch":"f\n<<<<<<< SEARCH\na\n=======\nb\n"}`,
			want: `Invalid field: patch: line 2: the block's ======= (line 4) has no >>>>>>> REPLACE line after it (was the text cut short?)`, field: "patch", code: CodeFieldInvalid},

		// Members under other names.
		{name: "unknown shape without target_file", body: `{"id":"a","role":"r","patch":{"x":1}}`,
			want: `Invalid field: patch: must hold ` + wantEditMembers + `, or "edits" (a list of edits)`, field: "patch", code: CodeFieldInvalid},
		{name: "find and replace", body: `{"id":"a","role":"r","target_file":"f","patch":{"find":"a","replace":"b"}}`,
			want: `Invalid field: patch.find: a search/replace edit takes "search" (the text to find) and "replace", not "find"`, field: "patch.find", code: CodeFieldInvalid},
		{name: "oldText newText", body: `{"id":"a","role":"r","target_file":"f","edits":[{"oldText":"a","newText":"b"}]}`,
			want: `Invalid field: edits[0].oldText: a search/replace edit takes "search" (the text to find) and "replace", not "oldText"`, field: "edits[0].oldText", code: CodeFieldInvalid},
		{name: "search with new_text", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"a","new_text":"b"}}`,
			want: `Invalid field: patch.new_text: a search/replace edit takes "replace" (the text to put in its place), not "new_text"`, field: "patch.new_text", code: CodeFieldInvalid},
		{name: "search without replace", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x"}}`,
			want: "Missing required field: patch.replace", field: "patch.replace", code: CodeFieldMissing},
		{name: "old_string without new_string", body: `{"id":"a","role":"r","target_file":"f","patch":{"old_string":"x"}}`,
			want: "Missing required field: patch.new_string", field: "patch.new_string", code: CodeFieldMissing},
		{name: "old_string with replace", body: `{"id":"a","role":"r","target_file":"f","patch":{"old_string":"x","replace":"y"}}`,
			want: `Invalid field: patch.replace: an edit with "old_string" takes "new_string", not "replace"`, field: "patch.replace", code: CodeFieldInvalid},
		{name: "search with replace_all", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x","replace":"y","replace_all":true}}`,
			want: `Invalid field: patch.replace_all: an edit with "search" takes "all", not "replace_all"`, field: "patch.replace_all", code: CodeFieldInvalid},
		{name: "search and old_string", body: `{"id":"a","role":"r","target_file":"f","patch":{"search":"x","old_string":"x","replace":"y"}}`,
			want: `Invalid field: patch: holds "search" and "old_string", two names of one member; send one`, field: "patch", code: CodeFieldInvalid},
		{name: "top-level path", body: `{"id":"a","role":"r","path":"f","patch":` + sr + `}`,
			want: `Invalid field: path: a block names its file in "target_file" (a path relative to the workspace), not "path"`, field: "path", code: CodeFieldInvalid},
		{name: "top-level file_path", body: `{"id":"a","role":"r","file_path":"/w/f","patch":{"old_string":"a","new_string":"b"}}`,
			want: `Invalid field: file_path: a block names its file in "target_file" (a path relative to the workspace), not "file_path"`, field: "file_path", code: CodeFieldInvalid},
		{name: "edit's file", body: `{"id":"a","role":"r","edits":[{"file":"f","search":"a","replace":"b"}]}`,
			want: `Invalid field: edits[0].file: an edit names its file in "target_file" (a path relative to the workspace), not "file"`, field: "edits[0].file", code: CodeFieldInvalid},
		{name: "edit's path beside the block's target_file", body: `{"id":"a","role":"r","target_file":"f","edits":[{"path":"g","search":"a","replace":"b"}]}`,
			want: `Invalid field: edits[0].path: an edit names its file in "target_file" (a path relative to the workspace), not "path"`, field: "edits[0].path", code: CodeFieldInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseWith([]byte(tt.body), tt.opts)
			if err == nil {
				t.Fatalf("Parse(%.300q) = %+v, want error %q", tt.body, b, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%.300q) error =\n%s\nwant\n%s", tt.body, err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field() != tt.field || fe.Code() != tt.code {
				t.Errorf("Parse(%.300q) error = %#v, want a *FieldError for %s, code %s", tt.body, err, tt.field, tt.code)
			}
		})
	}
}

// TestIntakePlanErrorNamesList: a refusal at planning names the element
// as the block sent it: "patch.edits[1]", "patch[0]".
func TestIntakePlanErrorNamesList(t *testing.T) {
	files := map[string][]byte{"f": []byte("a\n")}
	for _, tt := range []struct{ body, prefix, field string }{
		{`{"id":"a","role":"r","target_file":"f","patch":{"edits":[{"search":"a","replace":"b"},{"search":"zzz","replace":"c"}]}}`, "patch.edits[1]: search text not found in f", "patch.edits[1].search"},
		{`{"id":"a","role":"r","target_file":"f","patch":[{"old_string":"zzz","new_string":"c"}]}`, "patch[0]: search text not found in f", "patch[0].old_string"},
		{`{"id":"a","role":"r","target_file":"f","edits":[{"search":"zzz","replace":"c"}]}`, "edits[0]: search text not found in f", "edits[0].search"},
	} {
		_, err := planWithin(t, context.Background(), tt.body, files, Limits{})
		var pe *PlanError
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tt.prefix) || pe.Field() != tt.field {
			t.Errorf("plan of %s: error %v (field %q), want one starting %q, field %q", tt.body, err, fieldOf(err), tt.prefix, tt.field)
		}
	}
}

func fieldOf(err error) string { _, f := codeOf(err); return f }

// TestIntakeLimits: the limits hold for the new shapes: more content than
// the patch may hold fails on its limit, whatever list the edits came in.
func TestIntakeLimits(t *testing.T) {
	files := map[string][]byte{"f": []byte("a\n")}
	big := strings.Repeat("x", 2048)
	for _, body := range []string{
		`{"id":"a","role":"r","target_file":"f","patch":{"edits":[{"search":"a","replace":"` + big + `"}]}}`,
		`{"id":"a","role":"r","target_file":"f","patch":[{"old_string":"a","new_string":"` + big + `"}]}`,
		`{"id":"a","role":"r","patch":"` + jsonText("f\n```\n<<<<<<< SEARCH\na\n=======\n"+big+"\n>>>>>>> REPLACE\n```\n") + `"}`,
	} {
		_, err := planWithin(t, context.Background(), body, files, Limits{MaxPatchBytes: 1024})
		var le *LimitError
		if !errors.As(err, &le) {
			t.Errorf("plan of %.120s: error %v, want a *LimitError", body, err)
		}
	}
}

// TestAiderEmptySearchOnContent: an empty SEARCH part on a file with
// content is refused as a creation over an existing file, writing nothing.
func TestAiderEmptySearchOnContent(t *testing.T) {
	body := `{"id":"a","role":"r","patch":"` + jsonText("CHANGES\n<<<<<<< SEARCH\n=======\n1.1\n>>>>>>> REPLACE\n") + `"}`
	changes, err := planWithin(t, context.Background(), body, map[string][]byte{"CHANGES": []byte("1.0\n")}, Limits{})
	want := "block 1 (line 2): " + wantAiderExists("CHANGES")
	if code, field := codeOf(err); err == nil || err.Error() != want || code != CodeFileExists || field != "patch" {
		t.Fatalf("plan = %+v, %v (code %q, field %q), want\n%s\n(code %s, field patch)", changes, err, code, field, want, CodeFileExists)
	}
}

func wantAiderExists(file string) string {
	return "the SEARCH part is empty, which creates a file, but " + file + " exists and is not empty; to add lines to it, put the lines they go after in SEARCH and repeat them in REPLACE"
}

// TestMayHoldEdits: the scan that spares a block of one edit a second
// split of its "patch" says false only when no member is named "edits".
func TestMayHoldEdits(t *testing.T) {
	for obj, want := range map[string]bool{
		`{"pattern":"x","replacement":"y"}`:         false,
		`{"search":"edits","replace":"edits"}`:      false,
		`{"edit":[],"edits_":[]}`:                   false,
		`{"edits":[]}`:                              true,
		`{"target_file":"f", "edits" : []}`:         true,
		`{"ed\u0069ts":[]}`:                         true,
		`{"\u0065dits":[],"search":"a"}`:            true,
		`{"pattern":"x","pattern\n":"y","edits":1}`: true,
	} {
		if got := mayHoldEdits([]byte(obj)); got != want {
			t.Errorf("mayHoldEdits(%s) = %v, want %v", obj, got, want)
		}
	}
}
