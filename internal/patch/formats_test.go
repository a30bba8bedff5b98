package patch

import (
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

// TestReferenceSemantics checks the places where each format follows its
// reference implementation (finding 16a): Codex's apply_patch ends every
// updated file with a newline; git apply refuses a hunk without context
// that is not at the end of the file (or in an empty one).
func TestReferenceSemantics(t *testing.T) {
	thirteen := strings.Repeat("line\n", 12) + "last\n"
	ap := func(body string) map[string]any {
		return map[string]any{"apply_patch": "*** Begin Patch\n" + body + "*** End Patch\n"}
	}
	diff := func(hunk string) map[string]any {
		return map[string]any{"diff": "--- a/f\n+++ b/f\n" + hunk}
	}
	tests := []struct {
		name    string
		patch   map[string]any
		content string
		want    string // the file after, or the error
		note    string
	}{
		{name: "apply_patch update adds the final newline", patch: ap("*** Update File: f\n@@\n a\n-b\n+B\n"), content: "a\nb", want: "a\nB\n",
			note: "apply_patch: f had no newline at its end; it has one now, as Codex's apply_patch ends every file it updates"},
		{name: "apply_patch update away from the end", patch: ap("*** Update File: f\n@@\n-a\n+A\n"), content: "a\nb", want: "A\nb\n"},
		{name: "apply_patch update keeps crlf", patch: ap("*** Update File: f\n@@\n-a\n+A\n"), content: "a\r\nb", want: "A\r\nb\r\n"},
		{name: "apply_patch deleting every line leaves an empty file", patch: ap("*** Update File: f\n@@\n-a\n-b\n"), content: "a\nb", want: ""},
		{name: "context-free insertion at the start of a non-empty file", patch: diff("@@ -0,0 +1,3 @@\n+x\n+y\n+z\n"), content: thirteen,
			want: "diff hunk 1 (@@ -0,0 +1,3 @@) of f only adds lines, with no context lines to place them, at line 1 of a file of 13 lines; like git apply, patchd places such a hunk only at the end of a file (or in an empty one): add context lines (unchanged lines around the insertion, prefixed with a space)"},
		{name: "context-free insertion in the middle", patch: diff("@@ -5,0 +6,1 @@\n+x\n"), content: thirteen,
			want: "diff hunk 1 (@@ -5,0 +6,1 @@) of f only adds lines, with no context lines to place them, at line 6 of a file of 13 lines; like git apply, patchd places such a hunk only at the end of a file (or in an empty one): add context lines (unchanged lines around the insertion, prefixed with a space)"},
		{name: "context-free insertion at the end", patch: diff("@@ -13,0 +14,2 @@\n+x\n+y\n"), content: thirteen, want: thirteen + "x\ny\n"},
		{name: "context-free insertion into an empty file", patch: diff("@@ -0,0 +1,2 @@\n+x\n+y\n"), content: "", want: "x\ny\n"},
		{name: "apply_patch insertion without context goes to the end", patch: ap("*** Update File: f\n@@\n+x\n"), content: "a\nb\n", want: "a\nb\nx\n"},
		{name: "apply_patch insertion after an anchor", patch: ap("*** Update File: f\n@@ a\n+x\n"), content: "a\nb\n",
			want: "apply_patch hunk 1 (@@ a) of f only adds lines, with no context lines to place them; Codex's apply_patch would add them at the end of the file, not after the @@ line: add context lines (unchanged lines around the insertion, prefixed with a space)"},
		{name: "apply_patch insertion at a line number", patch: ap("*** Update File: f\n@@ -1,0 +2,1 @@\n+x\n"), content: "a\nb\n",
			want: "apply_patch hunk 1 (@@ -1,0 +2,1 @@) of f only adds lines, with no context lines to place them; Codex's apply_patch would add them at the end of the file, not at line 2: add context lines (unchanged lines around the insertion, prefixed with a space)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := planPatch(t, tt.patch, []byte(tt.content))
			if err != nil {
				if err.Error() != tt.want {
					t.Fatalf("Plan(%q) error =\n%v\nwant\n%s", tt.patch, err, tt.want)
				}
				return
			}
			if len(changes) != 1 || string(changes[0].New) != tt.want {
				t.Fatalf("Plan(%q) = %+v, want %q", tt.patch, changes, tt.want)
			}
			if notes := strings.Join(changes[0].Notes, "\n"); !strings.Contains(notes, tt.note) {
				t.Errorf("Plan(%q) notes =\n%s\nwant one with %q", tt.patch, notes, tt.note)
			}
		})
	}
}

// TestModes checks what a diff's modes do (finding 16a): a new file is
// created executable when the diff says so; an existing file keeps its
// mode, and a diff that only changes a mode is refused saying that.
func TestModes(t *testing.T) {
	tree := map[string][]byte{"run.sh": []byte("echo hi\n")}
	tests := []struct {
		name, diff string
		want       string // error, or "" for success
		mode       fs.FileMode
		note       string
	}{
		{name: "mode only", diff: "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n",
			want: "Invalid field: patch.diff: the diff only changes the mode of run.sh (100644 to 100755), and patchd does not change the mode of an existing file: make it executable yourself (chmod +x run.sh)"},
		{name: "mode and content", diff: "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n--- a/run.sh\n+++ b/run.sh\n@@ -1 +1 @@\n-echo hi\n+echo hello\n",
			note: "mode change (100644 to 100755) not applied: patchd keeps the mode of an existing file"},
		{name: "new executable file", diff: "diff --git a/new.sh b/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/new.sh\n@@ -0,0 +1 @@\n+echo new\n", mode: 0o755},
		{name: "new plain file", diff: "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+new\n", mode: 0o644},
		{name: "new file, setuid asked", diff: "diff --git a/new.sh b/new.sh\nnew file mode 104755\n--- /dev/null\n+++ b/new.sh\n@@ -0,0 +1 @@\n+echo new\n", mode: 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changes []Change
			b, err := Parse([]byte(`{"id":"x","role":"r","patch":{"diff":"` + jsonText(tt.diff) + `"}}`))
			if err == nil {
				changes, err = b.Plan(treeReader(tree))
			}
			if tt.want != "" {
				if err == nil || err.Error() != tt.want {
					t.Fatalf("Plan(%q) = %+v, %v; want error\n%s", tt.diff, changes, err, tt.want)
				}
				return
			}
			if err != nil || len(changes) != 1 {
				t.Fatalf("Plan(%q) = %+v, %v; want one change", tt.diff, changes, err)
			}
			if changes[0].Mode != tt.mode {
				t.Errorf("Plan(%q) mode = %v, want %v", tt.diff, changes[0].Mode, tt.mode)
			}
			if notes := strings.Join(changes[0].Notes, "\n"); !strings.Contains(notes, tt.note) {
				t.Errorf("Plan(%q) notes =\n%s\nwant one with %q", tt.diff, notes, tt.note)
			}
		})
	}
}

// TestDeleteDirectory: deleting a directory says what to do instead
// (finding 16a).
func TestDeleteDirectory(t *testing.T) {
	read := func(p string) ([]byte, bool, error) {
		if p == "dir" {
			return nil, false, fmt.Errorf("path %q: is a directory: %w", p, syscall.EISDIR)
		}
		return nil, false, nil
	}
	want := "cannot delete dir: it is a directory, and a patch deletes files one by one: delete each file under it"
	for _, body := range []string{
		`{"id":"x","role":"r","patch":{"apply_patch":"*** Begin Patch\n*** Delete File: dir\n*** End Patch"}}`,
		`{"id":"x","role":"r","patch":{"diff":"diff --git a/dir b/dir\ndeleted file mode 100644\n"}}`,
	} {
		b, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Plan(read)
		if err == nil || err.Error() != want {
			t.Errorf("Plan(%s) = %v, want %q", body, err, want)
		}
	}
}
