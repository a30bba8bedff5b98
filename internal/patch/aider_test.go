package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseAider reads aider edit blocks as aider writes them: file names
// before the SEARCH marker, in or out of fences, decorated or not, reused
// when missing; commentary ignored; malformed blocks refused by line.
func TestParseAider(t *testing.T) {
	type blk struct{ file, search, replace string }
	tests := []struct {
		name string
		text string
		def  string // target_file
		want []blk
		err  string // a part of the refusal, when refused
	}{
		{name: "plain", text: "a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",
			want: []blk{{"a.py", "x = 1\n", "x = 2\n"}}},
		{name: "no final newline", text: "a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE",
			want: []blk{{"a.py", "x = 1\n", "x = 2\n"}}},
		{name: "fenced with a language tag and commentary",
			text: "Here is the change.\n\nsrc/a.py\n```python\n<<<<<<< SEARCH\ndef f():\n    return 1\n=======\ndef f():\n    return 2\n>>>>>>> REPLACE\n```\n\nThat should do it.\n",
			want: []blk{{"src/a.py", "def f():\n    return 1\n", "def f():\n    return 2\n"}}},
		{name: "file name inside the fence", text: "```python\nsrc/a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n",
			want: []blk{{"src/a.py", "a\n", "b\n"}}},
		{name: "file name before two fence lines", text: "```python\nsrc/a.py\n```\n```python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n",
			want: []blk{{"src/a.py", "a\n", "b\n"}}},
		{name: "decorated file name", text: "### **`src/my\\_mod.py`**:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
			want: []blk{{"src/my_mod.py", "a\n", "b\n"}}},
		{name: "file name is cleaned", text: "./src//a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
			want: []blk{{"src/a.py", "a\n", "b\n"}}},
		{name: "multiple files", text: "a.py\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n\nb.py\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n",
			want: []blk{{"a.py", "a\n", "A\n"}, {"b.py", "b\n", "B\n"}}},
		{name: "missing file name reuses the previous one",
			text: "a.py\n```python\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n```\n\n```python\n<<<<<<< SEARCH\nc\n=======\nC\n>>>>>>> REPLACE\n```\n",
			want: []blk{{"a.py", "a\n", "A\n"}, {"a.py", "c\n", "C\n"}}},
		{name: "adjacent blocks reuse the file name", text: "a.py\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nC\n>>>>>>> REPLACE\n",
			want: []blk{{"a.py", "a\n", "A\n"}, {"a.py", "c\n", "C\n"}}},
		{name: "first block without a name takes target_file", def: "t.py", text: "<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n",
			want: []blk{{"t.py", "a\n", "A\n"}}},
		{name: "marker lengths 5 and 9, spaces around", text: "a.py\n  <<<<< SEARCH  \na\n=========\nA\n>>>>>>>>> REPLACE\t\n",
			want: []blk{{"a.py", "a\n", "A\n"}}},
		{name: "SEARCH> variant", text: "a.py\n<<<<<<< SEARCH>\na\n=======\nA\n>>>>>>> REPLACE\n",
			want: []blk{{"a.py", "a\n", "A\n"}}},
		{name: "empty search creates", text: "new.py\n<<<<<<< SEARCH\n=======\nprint(1)\n>>>>>>> REPLACE\n",
			want: []blk{{"new.py", "", "print(1)\n"}}},
		{name: "empty replace deletes", text: "a.py\n<<<<<<< SEARCH\na\n=======\n>>>>>>> REPLACE\n",
			want: []blk{{"a.py", "a\n", ""}}},
		{name: "crlf text keeps its content", text: "a.py\r\n<<<<<<< SEARCH\r\na\r\n=======\r\nA\r\n>>>>>>> REPLACE\r\n",
			want: []blk{{"a.py", "a\r\n", "A\r\n"}}},
		{name: "divider inside the replace part is content", text: "a.md\n<<<<<<< SEARCH\nTitle\n=======\nTitle\n=======\n>>>>>>> REPLACE\n",
			want: []blk{{"a.md", "Title\n", "Title\n=======\n"}}},
		{name: "four or ten marker characters are not markers", text: "a.py\n<<<< SEARCH\n<<<<<<<<<< SEARCH\n",
			err: "line 1: no edit block"},
		{name: "no block", text: "just some words\n", err: "line 1: no edit block"},
		{name: "empty text", text: "", err: "no edit block"},
		{name: "search without divider", text: "a.py\n<<<<<<< SEARCH\na\n",
			err: "line 2: <<<<<<< SEARCH without a ======= line after it (was the text cut short?)"},
		{name: "search without replace marker", text: "a.py\n<<<<<<< SEARCH\na\n=======\nb\n",
			err: "line 2: the block's ======= (line 4) has no >>>>>>> REPLACE line after it (was the text cut short?)"},
		{name: "search inside a block", text: "a.py\n<<<<<<< SEARCH\na\n<<<<<<< SEARCH\n=======\nb\n>>>>>>> REPLACE\n",
			err: "line 4: <<<<<<< SEARCH inside the block opened at line 2"},
		{name: "search inside the replace part", text: "a.py\n<<<<<<< SEARCH\na\n=======\n<<<<<<< SEARCH\n>>>>>>> REPLACE\n",
			err: "line 5: <<<<<<< SEARCH inside the block opened at line 2"},
		{name: "replace without search", text: "a.py\n=======\nb\n>>>>>>> REPLACE\n",
			err: "line 4: >>>>>>> REPLACE without a <<<<<<< SEARCH before it"},
		{name: "no file name at all", text: "\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
			err: "line 2: no file name before <<<<<<< SEARCH"},
		{name: "a fence is no file name", text: "```python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n",
			err: "line 2: no file name before <<<<<<< SEARCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := parseAider(tt.text, tt.def, 0)
			if tt.err != "" {
				want := tt.err
				if strings.HasPrefix(want, "line 1: no edit block") {
					want = "no edit block" // the refusal of a text of no block names no line
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("parseAider(%q) error = %v, want one with %q", tt.text, err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAider(%q): %v", tt.text, err)
			}
			var got []blk
			for _, b := range blocks {
				got = append(got, blk{b.sr.TargetFile, b.sr.Search, b.sr.Replace})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("parseAider(%q) =\n%q\nwant\n%q", tt.text, got, tt.want)
			}
		})
	}
}

// TestParseAiderBlock checks the intake of a "text" patch: refusals name
// patch.text (or the edits element) and the line; blocks count against
// MaxEdits.
func TestParseAiderBlock(t *testing.T) {
	body := func(patch any) []byte {
		b, err := json.Marshal(map[string]any{"id": "a", "role": "r", "patch": patch})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block := "a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
	tests := []struct {
		name string
		body []byte
		opts ParseOptions
		err  string // the refusal, "" when accepted
	}{
		{name: "accepted without target_file", body: body(map[string]any{"text": block})},
		{name: "bare string", body: body(block)},
		{name: "cut short", body: body(map[string]any{"text": "a.py\n<<<<<<< SEARCH\na\n"}),
			err: "Invalid field: patch.text: line 2: <<<<<<< SEARCH without a ======= line after it (was the text cut short?)"},
		{name: "no block", body: body(map[string]any{"text": "a.py\nx\n"}),
			err: "Invalid field: patch.text: no edit block: want the file's path on a line, then <<<<<<< SEARCH, the lines to find, =======, the lines to put in their place and >>>>>>> REPLACE, each marker on a line of its own"},
		{name: "not a string", body: body(map[string]any{"text": 5}), err: "Invalid field: patch.text: must be a string, not a number"},
		{name: "empty", body: body(map[string]any{"text": ""}), err: "Missing required field: patch.text"},
		{name: "with another format", body: []byte(`{"id":"a","role":"r","target_file":"f","patch":{"text":"x","diff":"x"}}`),
			err: "Invalid field: patch: holds members of several formats (diff, text); send one edit per object"},
		{name: "blocks over max-edits", body: body(map[string]any{"text": block + block + block}), opts: ParseOptions{MaxEdits: 2, MaxEditsSetting: "max-edits"},
			err: "Invalid field: patch.text: holds more than 2 edit blocks, the most one patch may (setting max-edits)"},
		{name: "blocks at max-edits", body: body(map[string]any{"text": block + block}), opts: ParseOptions{MaxEdits: 2}},
		{name: "blocks and edits over max-edits", opts: ParseOptions{MaxEdits: 3, MaxEditsSetting: "max-edits"},
			body: []byte(`{"id":"a","role":"r","edits":[{"text":` + jsonString(block+block) + `},{"target_file":"f","search":"x","replace":"y"},{"text":` + jsonString(block) + `}]}`),
			err:  "Invalid field: edits[0].text: holds more edit blocks than the 3 edits of a block allow (each block counts one, with the other edits), the most one patch may (setting max-edits)"},
		{name: "blocks of an element over max-edits", opts: ParseOptions{MaxEdits: 3, MaxEditsSetting: "max-edits"},
			body: []byte(`{"id":"a","role":"r","edits":[{"target_file":"f","search":"x","replace":"y"},{"text":` + jsonString(block+block+block) + `}]}`),
			err:  "Invalid field: edits[1].text: holds more edit blocks than the 3 edits of a block allow (each block counts one, with the other edits), the most one patch may (setting max-edits)"},
		{name: "element refusal names it", body: []byte(`{"id":"a","role":"r","edits":[{"text":"a.py\n<<<<<<< SEARCH\n"}]}`),
			err: "Invalid field: edits[0].text: line 2: <<<<<<< SEARCH without a ======= line after it (was the text cut short?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseWith(tt.body, tt.opts)
			if tt.err != "" {
				var fe *FieldError
				if err == nil || err.Error() != tt.err || !errors.As(err, &fe) {
					t.Fatalf("Parse(%s) error = %v, want *FieldError %q", tt.body, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.body, err)
			}
			if got := b.Edits[0].Format(); got != "aider" {
				t.Errorf("format %q, want aider", got)
			}
			if got := strings.Join(b.Targets(), ","); got != "a.py" {
				t.Errorf("targets %q, want a.py", got)
			}
		})
	}
}

// TestAiderApply checks how blocks apply: in order on the in-memory
// content, all or none, with the search/replace matching and refusals; an
// empty SEARCH part creates a file, and is refused on one with content.
func TestAiderApply(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		content string // of f; "-" for no file
		want    string // f after, or the refusal
		note    string
	}{
		{name: "exact", text: "f\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n", content: "a\nb\nc\n", want: "a\nB\nc\n"},
		{name: "chained blocks", text: "f\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nB\nc\n=======\nC\n>>>>>>> REPLACE\n", content: "a\nb\nc\n", want: "a\nC\n"},
		{name: "loose match", text: "f\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n", content: "a\nb  \nc\n", want: "a\nB\nc\n", note: "search text matched"},
		{name: "crlf file stays crlf", text: "f\n<<<<<<< SEARCH\nb\n=======\nB\nB2\n>>>>>>> REPLACE\n", content: "a\r\nb\r\nc\r\n", want: "a\r\nB\r\nB2\r\nc\r\n"},
		{name: "last line without newline", text: "f\n<<<<<<< SEARCH\nc\n=======\nC\n>>>>>>> REPLACE\n", content: "a\nc", want: "a\nC"},
		{name: "empty search creates", text: "f\n<<<<<<< SEARCH\n=======\nnew\n>>>>>>> REPLACE\n", content: "-", want: "new\n"},
		{name: "empty search fills an empty file", text: "f\n<<<<<<< SEARCH\n=======\nnew\n>>>>>>> REPLACE\n", content: "", want: "new\n"},
		{name: "empty search on a file with content", text: "f\n<<<<<<< SEARCH\n=======\nnew\n>>>>>>> REPLACE\n", content: "a", want: "block 1 (line 2): " + wantAiderExists("f")},
		{name: "blank search on a file with content", text: "f\n<<<<<<< SEARCH\n\n=======\nnew\n>>>>>>> REPLACE\n", content: "a\r\n", want: "block 1 (line 2): " + wantAiderExists("f")},
		{name: "not found", text: "f\n<<<<<<< SEARCH\nx\n=======\nB\n>>>>>>> REPLACE\n", content: "a\nb\n",
			want: "block 1 (line 2): search text not found in f"},
		{name: "ambiguous", text: "f\n<<<<<<< SEARCH\na\n=======\nB\n>>>>>>> REPLACE\n", content: "a\nb\na\n",
			want: "block 1 (line 2): search text matches 2 places in f (lines 1, 3); " + aiderAllHint},
		{name: "second block fails: nothing applies", text: "f\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\nf\n<<<<<<< SEARCH\nzzz\n=======\nB\n>>>>>>> REPLACE\n", content: "a\nb\n",
			want: "block 2 (line 8): search text not found in f"},
		{name: "missing file", text: "f\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n", content: "-", want: "block 1 (line 2): target file f does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := parseAider(tt.text, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			var content []byte
			if tt.content != "-" {
				content = []byte(tt.content)
			}
			changes, err := planOne(&AiderText{Text: tt.text, blocks: blocks}, content)
			if err != nil {
				if !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("error =\n%v\nwant it to start with\n%s", err, tt.want)
				}
				return
			}
			if len(changes) != 1 || string(changes[0].New) != tt.want {
				t.Fatalf("changes %+v, want f = %q", changes, tt.want)
			}
			if notes := strings.Join(changes[0].Notes, "\n"); !strings.Contains(notes, tt.note) {
				t.Errorf("notes =\n%s\nwant one with %q", notes, tt.note)
			}
		})
	}
}
