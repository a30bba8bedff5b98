package patch

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzDeadline is how long one input may take to parse and plan. Inputs
// are small, so anything near it is a complexity bug, not a slow machine.
const fuzzDeadline = 2 * time.Second

// planOne plans the edit against a workspace holding only file f.
func planOne(e Edit, f []byte) ([]Change, error) {
	return (&Block{Edits: []Edit{e}}).Plan(func(p string) ([]byte, bool, error) {
		if p != "f" || f == nil {
			return nil, false, nil
		}
		return bytes.Clone(f), true, nil
	})
}

// checkPlanError checks that a refusal is one of the errors Plan documents
// and has a message.
func checkPlanError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if err.Error() == "" {
		t.Fatalf("%s: error %T without a message", what, err)
	}
	var me *MatchError
	if errors.As(err, &me) && me.Count == 0 && len(me.Lines) == 0 && !me.AtEnd {
		t.Fatalf("%s: MatchError that neither lists places nor quotes lines: %v", what, err)
	}
}

// roundTrip checks that the diff Diff writes from old to new, parsed and
// planned against old, gives new. A diff's line endings never reach the
// file, so only pairs that keep one style of line ending can be compared
// byte for byte: without '\r', and the same with every "\n" as "\r\n".
// Other pairs must apply without error.
func roundTrip(t *testing.T, old, new []byte) {
	t.Helper()
	if bytes.ContainsRune(old, '\r') || bytes.ContainsRune(new, '\r') {
		d := Diff("f", old, new)
		if d == "" {
			return
		}
		files, err := parseUnifiedDiff(d, "")
		if err != nil {
			t.Fatalf("parsing Diff(%q, %q):\n%s\nerror: %v", old, new, d, err)
		}
		if _, err := planOne(&UnifiedDiff{Text: d, files: files}, old); err != nil {
			t.Fatalf("applying Diff(%q, %q):\n%s\nerror: %v", old, new, d, err)
		}
		return
	}
	exactRoundTrip(t, old, new)
	exactRoundTrip(t, toCRLF(old), toCRLF(new))
}

func toCRLF(b []byte) []byte {
	if b == nil {
		return nil
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func exactRoundTrip(t *testing.T, old, new []byte) {
	t.Helper()
	d := Diff("f", old, new)
	if d == "" {
		return
	}
	files, err := parseUnifiedDiff(d, "")
	if err != nil {
		t.Fatalf("parsing Diff(%q, %q):\n%s\nerror: %v", old, new, d, err)
	}
	changes, err := planOne(&UnifiedDiff{Text: d, files: files}, old)
	if err != nil {
		t.Fatalf("applying Diff(%q, %q):\n%s\nerror: %v", old, new, d, err)
	}
	if len(changes) != 1 || !bytes.Equal(changes[0].New, new) || (changes[0].New == nil) != (new == nil) {
		t.Fatalf("applying Diff(%q, %q):\n%s\ngives %+v, want New %q", old, new, d, changes, new)
	}
}

func FuzzParseUnifiedDiff(f *testing.F) {
	f.Add("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"))
	f.Add("diff --git a/f b/g\nsimilarity index 100%\nrename from f\nrename to g\n", []byte("x\n"), []byte("x"))
	f.Add("```diff\n--- f\n+++ f\n@@ ... @@\n-x\n\\ No newline at end of file\n+y\n```\n", []byte("x"), []byte("y\n"))
	f.Add("@@ -0,0 +1 @@\n+new\n", []byte(""), []byte("a\r\nb\r\n"))
	f.Add("--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n", []byte("a\nb\na\nb\na\n"), []byte("b\na\nb\n"))
	f.Add("--- a/f\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n", []byte("\tif x {\n\t\treturn\n\t}\n"), []byte("\tif x {\n\t\treturn 1\n\t}\n"))
	f.Add("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-- sql comment\n++ x\n--- a/f\n+++ b/f\n", []byte("-- sql\n"), []byte("++ x\n"))
	f.Fuzz(func(t *testing.T, text string, old, new []byte) {
		start := time.Now()
		// Any text: parsing and planning never panic, and refuse cleanly.
		if files, err := parseUnifiedDiff(text, "f"); err == nil {
			if len(files) == 0 {
				t.Fatalf("parseUnifiedDiff(%q) gave no files and no error", text)
			}
			for _, fp := range files {
				if fp.path == "" {
					t.Fatalf("parseUnifiedDiff(%q) gave a file patch without a path", text)
				}
			}
			_, err := planOne(&UnifiedDiff{Text: text, files: files}, old)
			checkPlanError(t, "planning "+text, err)
		} else if err.Error() == "" {
			t.Fatalf("parseUnifiedDiff(%q) error without a message", text)
		}

		// Our own diffs apply: changes, creations, deletions, and the
		// same with each byte read as a line from a small alphabet, so
		// that lines repeat and only the line numbers tell places apart.
		roundTrip(t, old, new)
		if len(new) > 0 {
			roundTrip(t, nil, new)
		}
		if len(old) > 0 {
			roundTrip(t, old, nil)
		}
		roundTrip(t, lineify(old), lineify(new))
		if d := time.Since(start); d > fuzzDeadline {
			t.Fatalf("took %v", d)
		}
	})
}

// toApplyPatch writes the change from old to new as an apply_patch update,
// from the hunks of Diff (whose @@ headers the parser takes as hints).
// Both must end with a newline: the format cannot say otherwise.
func toApplyPatch(old, new []byte) string {
	d := Diff("f", old, new)
	rows := strings.SplitAfter(d, "\n")
	return "*** Begin Patch\n*** Update File: f\n" + strings.Join(rows[2:], "") + "*** End Patch\n"
}

func FuzzParseApplyPatch(f *testing.F) {
	f.Add("*** Begin Patch\n*** Update File: f\n@@ def f():\n-    return 1\n+    return 2\n*** End Patch", []byte("def f():\n    return 1\n"), []byte("def f():\n    return 2\n"))
	f.Add("*** Begin Patch\n*** Add File: g\n+x\n\n+y\n*** Delete File: f\n*** End Patch\n", []byte("x\n"), []byte(""))
	f.Add("apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: f\n*** Move to: g\n@@\n a\n+b\n*** End of File\n*** End Patch\nEOF\n", []byte("a\n"), []byte("a\nb\n"))
	f.Add("*** Begin Patch\n*** Update File: f\n@@\n a\nb\n*** End Patch", []byte("a\nb\na\nb\n"), []byte("a\nB\na\nb\n"))
	f.Add("*** Begin Patch\n*** Update File: f\n@@ class A\n@@   def g\n-x\n+y\n", []byte("class A\n  def g\nx\n"), []byte("\tx\n"))
	f.Fuzz(func(t *testing.T, text string, old, new []byte) {
		start := time.Now()
		if files, err := parseApplyPatch(text); err == nil {
			if len(files) == 0 {
				t.Fatalf("parseApplyPatch(%q) gave no files and no error", text)
			}
			_, err := planOne(&ApplyPatch{Text: text, files: files}, old)
			checkPlanError(t, "planning "+text, err)
		} else if err.Error() == "" {
			t.Fatalf("parseApplyPatch(%q) error without a message", text)
		}

		for _, pair := range [][2][]byte{{old, new}, {lineify(old), lineify(new)}} {
			o, n := pair[0], pair[1]
			if bytes.Equal(o, n) || bytes.ContainsRune(o, '\r') || bytes.ContainsRune(n, '\r') ||
				!endsLine(o) || !endsLine(n) {
				continue
			}
			p := toApplyPatch(o, n)
			files, err := parseApplyPatch(p)
			if err != nil {
				t.Fatalf("parsing the apply_patch of %q to %q:\n%s\nerror: %v", o, n, p, err)
			}
			changes, err := planOne(&ApplyPatch{Text: p, files: files}, o)
			if err != nil {
				t.Fatalf("applying the apply_patch of %q to %q:\n%s\nerror: %v", o, n, p, err)
			}
			if len(changes) != 1 || !bytes.Equal(changes[0].New, n) {
				t.Fatalf("applying the apply_patch of %q to %q:\n%s\ngives %+v", o, n, p, changes)
			}
		}
		if d := time.Since(start); d > fuzzDeadline {
			t.Fatalf("took %v", d)
		}
	})
}

func endsLine(b []byte) bool { return len(b) == 0 || b[len(b)-1] == '\n' }

// FuzzParseAider parses aider edit blocks and plans them against a file f:
// never a panic, only documented refusals; and a block replacing the whole
// of a file's lines with others gives exactly those lines.
func FuzzParseAider(f *testing.F) {
	f.Add("f\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"))
	f.Add("Commentary.\n\nf\n```python\n<<<<<<< SEARCH\n    x\n=======\n    y\n    z\n>>>>>>> REPLACE\n```\n```\n<<<<<<< SEARCH\n=======\nend\n>>>>>>> REPLACE\n```\n", []byte("\tx\n"), []byte(""))
	f.Add("### `f`:\r\n<<<<< SEARCH>\r\na\r\n=========\r\n>>>>>>>>> REPLACE", []byte("a\r\nb"), []byte("x\n"))
	f.Add("f\n<<<<<<< SEARCH\na\n<<<<<<< SEARCH\n=======\n", []byte("a\na\n"), []byte("a\n"))
	f.Add("g\n<<<<<<< SEARCH\n\n=======\nnew\n>>>>>>> REPLACE\n>>>>>>> REPLACE\n", []byte("a"), []byte("=======\n"))
	// Aider's fenced format: the path inside the fence (issue 12); an
	// empty SEARCH part on a file with content.
	f.Add("```python\nf\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n```python\nf\n<<<<<<< SEARCH\n=======\nc\n>>>>>>> REPLACE\n```\n", []byte("a\n"), []byte(""))
	f.Add("```\n../f\n<<<<<<< SEARCH\n  a\n=======\n>>>>>>> REPLACE\n```", []byte("a\na\n"), []byte("  a\n"))
	f.Fuzz(func(t *testing.T, text string, old, new []byte) {
		start := time.Now()
		if blocks, err := parseAider(text, "f", 0); err == nil {
			if len(blocks) == 0 {
				t.Fatalf("parseAider(%q) gave no blocks and no error", text)
			}
			for _, b := range blocks {
				if b.sr.TargetFile == "" {
					t.Fatalf("parseAider(%q) gave a block without a file", text)
				}
			}
			_, err := planOne(&AiderText{Text: text, blocks: blocks}, old)
			checkPlanError(t, "planning "+text, err)
		} else if err.Error() == "" {
			t.Fatalf("parseAider(%q) error without a message", text)
		}

		for _, pair := range [][2][]byte{{old, new}, {lineify(old), lineify(new)}} {
			o, n := pair[0], pair[1]
			if len(bytes.TrimSpace(o)) == 0 || bytes.ContainsRune(o, '\r') || bytes.ContainsRune(n, '\r') ||
				!endsLine(o) || !endsLine(n) {
				continue
			}
			p := "f\n<<<<<<< SEARCH\n" + string(o) + "=======\n" + string(n) + ">>>>>>> REPLACE\n"
			blocks, err := parseAider(p, "", 0)
			if err != nil || len(blocks) != 1 || blocks[0].sr.Search != string(o) || blocks[0].sr.Replace != string(n) {
				continue // the lines hold markers
			}
			changes, err := planOne(&AiderText{Text: p, blocks: blocks}, o)
			if err != nil {
				t.Fatalf("applying the block of %q to %q:\n%s\nerror: %v", o, n, p, err)
			}
			if !bytes.Equal(o, n) && (len(changes) != 1 || !bytes.Equal(changes[0].New, n)) {
				t.Fatalf("applying the block of %q to %q:\n%s\ngives %+v", o, n, p, changes)
			}
		}
		if d := time.Since(start); d > fuzzDeadline {
			t.Fatalf("took %v", d)
		}
	})
}
