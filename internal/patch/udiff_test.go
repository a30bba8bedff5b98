package patch

import (
	"fmt"
	"strings"
	"testing"
)

// describeFiles summarises parsed file patches for comparison: op, paths,
// and per hunk its hint, anchors, end-of-file flag and line kinds.
func describeFiles(files []*filePatch) string {
	var parts []string
	for _, fp := range files {
		op := map[fileOp]string{opUpdate: "update", opCreate: "create", opDelete: "delete"}[fp.op]
		s := op + " " + fp.path
		if fp.moveTo != "" {
			s += " -> " + fp.moveTo
		}
		if fp.altPath != "" {
			s += " (or " + fp.altPath + ")"
		}
		for _, h := range fp.hunks {
			var kinds strings.Builder
			for _, l := range h.lines {
				kinds.WriteByte(l.kind)
			}
			s += fmt.Sprintf(" [%d %q", h.hint, strings.ReplaceAll(kinds.String(), " ", "."))
			if len(h.anchors) > 0 {
				s += fmt.Sprintf(" @%q", h.anchors)
			}
			if h.eof {
				s += " eof"
			}
			if h.oldNoNL || h.newNoNL {
				s += fmt.Sprintf(" nonl:%v,%v", h.oldNoNL, h.newNoNL)
			}
			s += "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestParseUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, text, target string
		want               string // describeFiles, or the error
	}{
		{name: "git", text: "diff --git a/x.go b/x.go\nindex 1..2 100644\n--- a/x.go\n+++ b/x.go\n@@ -3,3 +3,3 @@ func f() {\n a\n-b\n+c\n d\n",
			want: `update x.go [2 ".-+."]`},
		{name: "plain with timestamps", text: "--- x.go.orig\t2024-01-01 10:00:00\n+++ x.go\t2024-01-01 10:00:01\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update x.go (or x.go.orig) [0 "-+"]`},
		{name: "no prefix stripping when only one side has it", text: "--- a/x\n+++ x\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update x (or a/x) [0 "-+"]`},
		{name: "quoted names", text: "--- \"a/sp ace\\tq\\\"\"\n+++ \"b/sp ace\\tq\\\"\"\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update sp ace` + "\t" + `q" [0 "-+"]`},
		{name: "name with space and tab suffix", text: "--- a/my file.txt\t\n+++ b/my file.txt\t\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update my file.txt [0 "-+"]`},
		{name: "creation", text: "diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+a\n+b\n",
			want: `create n [0 "++"]`},
		{name: "empty creation", text: "diff --git a/n b/n\nnew file mode 100644\nindex 0000000..e69de29\n",
			want: `create n`},
		{name: "deletion without hunks", text: "diff --git a/n b/n\ndeleted file mode 100644\nindex e69de29..0000000\n",
			want: `delete n`},
		{name: "pure rename", text: "diff --git a/old name b/new name\nsimilarity index 100%\nrename from old name\nrename to new name\n",
			want: `update old name -> new name`},
		{name: "git names differ without rename lines", text: "diff --git a/x b/y\n--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update x -> y [0 "-+"]`},
		{name: "lone diff --git is noise", text: "diff --git a/x b/x\ndiff --git a/y b/y\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
			want: `update y [0 "-+"]`},
		{name: "two files", text: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/y\n+++ b/y\n@@ -5,0 +6 @@\n+c\n",
			want: `update x [0 "-+"]; update y [5 "+"]`},
		{name: "wrong counts: lines after the count still belong to the hunk", text: "--- a/x\n+++ b/x\n@@ -1,1 +1,1 @@\n a\n-b\n+c\n d\n",
			want: `update x [0 ".-+."]`},
		{name: "removed sql comment is not a header while counts are due", text: "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n--- note\n+++ note\n a\n",
			want: `update x [0 "-+."]`},
		{name: "header after a complete hunk", text: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-c\n+d\n",
			want: `update x [0 "-+"]; update y [0 "-+"]`},
		{name: "no numbers", text: "--- a/x\n+++ b/x\n@@ ... @@\n a\n-b\n+c\n",
			want: `update x [-1 ".-+"]`},
		{name: "empty lines are blank context, dropped at the ends", text: "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n\n a\n\n-b\n+c\n\n\n",
			want: `update x [1 "..-+"]`},
		{name: "unprefixed line between hunk lines is context", text: "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\nb\n-c\n+d\n",
			want: `update x [0 "..-+"]`},
		{name: "commentary after a complete hunk", text: "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\nThat's all.\nBye.\n",
			want: `update x [0 ".-+"]`},
		{name: "bullets after a fence", text: "```diff\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n```\n- renamed b\n+ more\n",
			want: `update x [0 ".-+"]`},
		{name: "change lines after text that ended the hunk", text: "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\nSome text\nMore text\n+c\n",
			want: `line 8: "+c" looks like a change, but the hunk above ended at line 6, "Some text", which has no ' ', '-' or '+' prefix; fix that line, or put text after the diff in a separate field`},
		{name: "bullets right after a complete hunk", text: "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\nChanges:\n- renamed b\n",
			want: `line 8: "- renamed b" looks like a change, but the hunk above ended at line 7, "Changes:", which has no ' ', '-' or '+' prefix; fix that line, or put text after the diff in a separate field`},
		{name: "fences", text: "```diff\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n```\n",
			want: `update x [0 "-+"]`},
		{name: "no newline markers", text: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n",
			want: `update x [0 "-+" nonl:true,true]`},
		{name: "no newline marker on context", text: "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n c\n\\ No newline at end of file\n",
			want: `update x [0 "-+." nonl:true,true]`},
		{name: "crlf diff", text: "--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n",
			want: `update x [0 "-+"]`},
		{name: "headerless with target", text: "@@ -2,1 +2,1 @@\n-a\n+b\n", target: "t.go",
			want: `update t.go [1 "-+"]`},

		{name: "creation with context", text: "--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n a\n+b\n",
			want: `line 1: the diff creates n (--- /dev/null) but hunk "@@ -0,0 +1 @@" has context or removed lines`},
		{name: "deletion adding lines", text: "--- a/n\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n+b\n",
			want: `line 1: the diff deletes n (+++ /dev/null) but hunk "@@ -1 +0,0 @@" adds lines`},
		{name: "headers without hunks", text: "--- a/x\n+++ b/x\n",
			want: `line 1: the diff of x has no hunks (@@ lines)`},
		{name: "empty hunk", text: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n@@ -2 +2 @@\n-a\n+b\n",
			want: `line 3: hunk "@@ -1 +1 @@" has no lines`},
		{name: "copy", text: "diff --git a/x b/y\nsimilarity index 100%\ncopy from x\ncopy to y\n",
			want: `line 3: copies are not supported; send the copy as a new file (--- /dev/null)`},
		{name: "both dev null", text: "--- /dev/null\n+++ /dev/null\n@@ -0,0 +1 @@\n+a\n",
			want: `line 1: the diff names no file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseUnifiedDiff(tt.text, tt.target)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = describeFiles(files)
			}
			if got != tt.want {
				t.Errorf("parseUnifiedDiff(%q) = %s, want %s", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseApplyPatch(t *testing.T) {
	tests := []struct {
		name, text string
		want       string // describeFiles, or the error
	}{
		{name: "update", text: "*** Begin Patch\n*** Update File: a.py\n@@ def f():\n a\n-b\n+c\n*** End Patch",
			want: `update a.py [-1 ".-+" @["def f():"]]`},
		{name: "first hunk without @@", text: "*** Begin Patch\n*** Update File: a.py\n a\n-b\n+c\n@@\n-d\n+e\n*** End Patch\n",
			want: `update a.py [-1 ".-+"] [-1 "-+"]`},
		{name: "nested anchors", text: "*** Begin Patch\n*** Update File: a.py\n@@ class A:\n@@     def f(self):\n-x\n+y\n*** End Patch",
			want: `update a.py [-1 "-+" @["class A:" "def f(self):"]]`},
		{name: "end of file", text: "*** Begin Patch\n*** Update File: a\n@@\n last\n+more\n*** End of File\n*** End Patch",
			want: `update a [-1 ".+" eof]`},
		{name: "unified header as hint", text: "*** Begin Patch\n*** Update File: a\n@@ -10,2 +10,3 @@\n x\n+y\n y\n*** End Patch",
			want: `update a [9 ".+."]`},
		{name: "add, delete, move", text: "*** Begin Patch\n*** Add File: n/x.py\n+one\n\n+three\n\n*** Delete File: old.py\n*** Update File: a\n*** Move to: b\n*** End Patch",
			want: `create n/x.py [-1 "+++"]; delete old.py; update a -> b`},
		{name: "blank lines in a hunk", text: "*** Begin Patch\n*** Update File: a\n@@\n\n a\n\n-b\n+c\n\n*** End Patch",
			want: `update a [-1 "..-+"]`},
		{name: "unprefixed context line between hunk lines", text: "*** Begin Patch\n*** Update File: a\n@@\n a\nb\n-c\n*** End Patch",
			want: `update a [-1 "..-"]`},
		{name: "heredoc and fence", text: "```\napply_patch <<'PATCH'\n*** Begin Patch\n*** Delete File: a\n*** End Patch\nPATCH\n```\n",
			want: `delete a`},
		{name: "crlf", text: "*** Begin Patch\r\n*** Update File: a\r\n@@\r\n-a\r\n+b\r\n*** End Patch\r\n",
			want: `update a [-1 "-+"]`},

		{name: "empty", text: " \n", want: `empty patch; want "*** Begin Patch", file sections and "*** End Patch"`},
		{name: "no begin", text: "*** Update File: a\n-a\n*** End Patch", want: `line 1: the patch must start with "*** Begin Patch", not "*** Update File: a"`},
		{name: "no end", text: "*** Begin Patch\n*** Update File: a\n-a\n", want: `line 3: the patch must end with "*** End Patch", not "-a" (was it cut short?)`},
		{name: "only markers", text: "*** Begin Patch\n*** End Patch", want: `the patch changes no file`},
		{name: "unknown section", text: "*** Begin Patch\n*** Modify File: a\n*** End Patch", want: `line 2: want "*** Add File: path", "*** Update File: path" or "*** Delete File: path", found "*** Modify File: a"`},
		{name: "add without plus", text: "*** Begin Patch\n*** Add File: a\nx\n*** End Patch", want: `line 3: every line of an added file starts with '+'; found "x" in a`},
		{name: "update without hunks", text: "*** Begin Patch\n*** Update File: a\n*** End Patch", want: `line 2: *** Update File: a has no hunks`},
		{name: "delete with lines", text: "*** Begin Patch\n*** Delete File: a\n-x\n*** End Patch", want: `line 3: *** Delete File: takes no lines; found "-x"`},
		{name: "no path", text: "*** Begin Patch\n*** Add File:  \n*** End Patch", want: `line 2: "*** Add File:" names no file`},
		{name: "stray line", text: "*** Begin Patch\n*** Update File: a\n@@\n-a\nnot a hunk line\n*** End Patch", want: `line 5: unexpected line "not a hunk line" in the hunk for a: every hunk line starts with ' ' (context), '-' (removed) or '+' (added)`},
		{name: "empty hunk", text: "*** Begin Patch\n*** Update File: a\n@@ x\n*** End Patch", want: `line 3: hunk "@@ x" of a has no lines`},
		{name: "end of file alone", text: "*** Begin Patch\n*** Update File: a\n*** End of File\n*** End Patch", want: `line 3: "*** End of File" without a hunk before it`},
		{name: "end patch early", text: "*** Begin Patch\n*** Delete File: a\n*** End Patch\n*** Delete File: b\n*** End Patch", want: `line 3: "*** End Patch" before the end of the patch`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := parseApplyPatch(tt.text)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = describeFiles(files)
			}
			if got != tt.want {
				t.Errorf("parseApplyPatch(%q) = %s, want %s", tt.text, got, tt.want)
			}
		})
	}
}
