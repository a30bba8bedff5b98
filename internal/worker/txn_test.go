package worker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/store"
)

// TestWriteAllOrNothing: when the last file of a transaction cannot be
// written, the files written before it get their old content back.
func TestWriteAllOrNothing(t *testing.T) {
	f := newFixture(t)
	f.write("a.txt", "A old\n", 0o644)
	f.write("b.txt", "B old\n", 0o600)
	os.MkdirAll(filepath.Join(f.ws, "dir.txt"), 0o755) // a directory where a file is expected
	tx := &txn{files: []txnFile{
		{path: "a.txt", old: []byte("A old\n"), new: []byte("A new\n"), existed: true, mode: 0o644},
		{path: "b.txt", old: []byte("B old\n"), new: []byte("B new\n"), existed: true, mode: 0o600},
		{path: "new.txt", new: []byte("created\n")},
		{path: "dir.txt", old: []byte(""), new: []byte("x"), existed: true, mode: 0o644},
	}}
	err := tx.write(f.worker.opts.Workspace)
	if err == nil || !strings.Contains(err.Error(), "dir.txt") || !strings.Contains(err.Error(), "no file was changed") {
		t.Fatalf("write = %v, want a failure naming dir.txt and saying nothing changed", err)
	}
	for path, want := range map[string]string{"a.txt": "A old\n", "b.txt": "B old\n"} {
		if got := f.read(path); got != want {
			t.Errorf("%s = %q after a failed transaction, want %q", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.ws, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("new.txt exists after a failed transaction: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(f.ws, "b.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("b.txt mode = %v, want 0600 kept", fi.Mode().Perm())
	}
}

// TestRecoverPartialTransaction: a crash between two files of one patch
// leaves one file new and one old; after the restart the patch is undone and
// applied again, never half applied and never twice.
func TestRecoverPartialTransaction(t *testing.T) {
	f := newFixture(t)
	f.write("f.txt", "a\n", 0o644)
	f.submit("M1", "f.txt", "a", "aa")
	ctx := context.Background()
	// A recorded two-file transaction: f.txt (the patch's own file) and a
	// file it created; the crash came after the created file was written.
	if err := f.store.PutBlob("M1", blobName(0), []byte("a\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Update(ctx, "M1", func(p *store.Patch) error {
		p.State, p.StartedAt = store.StateApplying, time.Now()
		p.Files = []store.FileChange{
			{Path: "f.txt", OldHash: hash([]byte("a\n")), NewHash: hash([]byte("aa\n")), OldMode: 0o644, Existed: true},
			{Path: "created.txt", OldHash: hash(nil), NewHash: hash([]byte("new\n"))},
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.write("created.txt", "new\n", 0o644)
	f.store.Close()
	f.open()
	f.run()
	p := f.settle("M1")
	if p.State != store.StateApplied {
		t.Fatalf("state = %s (%s), want applied", p.State, p.Error)
	}
	if got := f.read("f.txt"); got != "aa\n" {
		t.Errorf("f.txt = %q, want the patch applied once", got)
	}
	// The regex form plans one file: the undone creation stays undone.
	if _, err := os.Stat(filepath.Join(f.ws, "created.txt")); !os.IsNotExist(err) {
		t.Errorf("created.txt after recovery: %v, want it undone", err)
	}
}

func (f *fixture) submitBody(id, body string) {
	f.t.Helper()
	if _, _, err := f.store.Submit(context.Background(), store.Patch{ID: id}, []byte(body)); err != nil {
		f.t.Fatal(err)
	}
}

// TestMultiFilePatchAndRevert: a unified diff that updates, creates,
// deletes and renames files applies as one, and its revert restores every
// file byte for byte.
func TestMultiFilePatchAndRevert(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "def greet():\n    return 'hello'\n", 0o644)
	f.write("old.txt", "to be deleted\n", 0o644)
	f.write("run.sh", "#!/bin/sh\necho hi\n", 0o755)
	diff := "diff --git a/src/app.py b/src/app.py\n--- a/src/app.py\n+++ b/src/app.py\n@@ -1,2 +1,2 @@\n def greet():\n-    return 'hello'\n+    return 'hello, world'\n" +
		"diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+created\n" +
		"diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-to be deleted\n" +
		"diff --git a/run.sh b/bin/run.sh\nsimilarity index 100%\nrename from run.sh\nrename to bin/run.sh\n"
	body, _ := json.Marshal(map[string]any{"id": "D1", "role": "refactor", "patch": map[string]string{"diff": diff}})
	f.submitBody("D1", string(body))
	f.run()
	p := f.settle("D1")
	if p.State != store.StateApplied {
		t.Fatalf("D1: %s %s", p.State, p.Error)
	}
	want := map[string]string{"src/app.py": "def greet():\n    return 'hello, world'\n", "new.txt": "created\n", "bin/run.sh": "#!/bin/sh\necho hi\n"}
	for path, content := range want {
		if got := f.read(path); got != content {
			t.Errorf("%s = %q, want %q", path, got, content)
		}
	}
	for _, gone := range []string{"old.txt", "run.sh"} {
		if _, err := os.Stat(filepath.Join(f.ws, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(f.ws, "bin/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("moved script mode = %v, %v; want 0755 kept", fi.Mode().Perm(), err)
	}

	if _, err := f.worker.Revert(context.Background(), "D1"); err != nil {
		t.Fatalf("revert: %v", err)
	}
	orig := map[string]string{"src/app.py": "def greet():\n    return 'hello'\n", "old.txt": "to be deleted\n", "run.sh": "#!/bin/sh\necho hi\n"}
	for path, content := range orig {
		if got := f.read(path); got != content {
			t.Errorf("after revert %s = %q, want %q", path, got, content)
		}
	}
	for _, gone := range []string{"new.txt", "bin/run.sh"} {
		if _, err := os.Stat(filepath.Join(f.ws, gone)); !os.IsNotExist(err) {
			t.Errorf("after revert %s still exists: %v", gone, err)
		}
	}
}

// TestFailedEditLeavesEverything: edits across files whose last one fails
// change no file at all, and the refusal names the element and the file.
func TestFailedEditLeavesEverything(t *testing.T) {
	f := newFixture(t)
	f.write("a.py", "x = 1\n", 0o644)
	f.write("b.py", "y = 2\n", 0o644)
	body := `{"id":"E1","role":"r","edits":[
		{"target_file":"a.py","search":"x = 1","replace":"x = 10"},
		{"target_file":"new.py","search":"","replace":"created\n"},
		{"target_file":"b.py","search":"z = 3","replace":"z = 30"}]}`
	f.submitBody("E1", body)
	f.run()
	p := f.settle("E1")
	if p.State != store.StateFailed || !strings.Contains(p.Error, "edits[2]") || !strings.Contains(p.Error, "b.py") {
		t.Errorf("E1: %s %q, want failed naming edits[2] and b.py", p.State, p.Error)
	}
	if f.read("a.py") != "x = 1\n" || f.read("b.py") != "y = 2\n" {
		t.Errorf("files changed by a failed patch: a.py %q, b.py %q", f.read("a.py"), f.read("b.py"))
	}
	if _, err := os.Stat(filepath.Join(f.ws, "new.py")); !os.IsNotExist(err) {
		t.Errorf("new.py created by a failed patch")
	}
}

// TestFittedNotes: an edit that matched only with whitespace tolerance is
// applied, and its summary says how it was fitted.
func TestFittedNotes(t *testing.T) {
	f := newFixture(t)
	f.write("a.py", "def f():  \n    return 1   \n", 0o644)
	body := `{"id":"W1","role":"r","target_file":"a.py","patch":{"search":"def f():\n    return 1","replace":"def f():\n    return 2"}}`
	f.submitBody("W1", body)
	f.run()
	p := f.settle("W1")
	if p.State != store.StateApplied || len(p.Notes) == 0 || !strings.HasPrefix(p.Notes[0], "a.py: ") {
		t.Fatalf("W1: %s %q notes %q, want applied with notes naming a.py", p.State, p.Error, p.Notes)
	}
	if !strings.Contains(f.summary("W1"), "Fitted") {
		t.Errorf("summary lacks the fitting notes:\n%s", f.summary("W1"))
	}
}

// TestFirstPatchSweepsStagedTemps: files are staged while the applying
// record is written, so a crash can leave a temporary file of a patch that
// is still queued. The first patch after a start removes those next to its
// targets; a look-alike name that is not patchd's stays.
func TestFirstPatchSweepsStagedTemps(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "a = 1\n", 0o644)
	f.write("src/.app.py.patchd-tmp-0123456789abcdef", "a = 2\n", 0o600)
	f.write("src/.app.py.patchd-tmp-not-ours", "keep\n", 0o600)
	f.submit("P1", "src/app.py", "a = 1", "a = 2")
	f.run()
	if p := f.settle("P1"); p.State != store.StateApplied {
		t.Fatalf("P1 = %s %s", p.State, p.Error)
	}
	entries, _ := os.ReadDir(filepath.Join(f.ws, "src"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".app.py.patchd-tmp-not-ours app.py" {
		t.Errorf("src/ holds %q, want the crashed attempt's temporary file gone and the rest kept", names)
	}
}

// TestOneFileTwoPaths: edits that reach one file by two paths (a.txt, and
// sub/up/a.txt where sub/up is a link to ".") apply one on top of the
// other, and the revert restores the original (finding 12).
func TestOneFileTwoPaths(t *testing.T) {
	f := newFixture(t)
	f.write("a.txt", "one\ntwo\n", 0o644)
	os.MkdirAll(filepath.Join(f.ws, "sub"), 0o755)
	if err := os.Symlink("..", filepath.Join(f.ws, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"L1","role":"r","edits":[
		{"target_file":"a.txt","search":"one","replace":"ONE"},
		{"target_file":"sub/up/a.txt","search":"two","replace":"TWO"}]}`
	f.submitBody("L1", body)
	f.run()
	p := f.settle("L1")
	if p.State != store.StateApplied {
		t.Fatalf("L1: %s %s", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "ONE\nTWO\n" {
		t.Errorf("a.txt = %q, want both edits, %q", got, "ONE\nTWO\n")
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "sub/up/a.txt leads to the same file as a.txt") {
		t.Errorf("notes %q do not say that sub/up/a.txt is a.txt", p.Notes)
	}
	if _, err := f.worker.Revert(context.Background(), "L1"); err != nil {
		t.Fatalf("revert: %v", err)
	}
	if got := f.read("a.txt"); got != "one\ntwo\n" {
		t.Errorf("after revert a.txt = %q, want the original", got)
	}
}

// TestFormatEdges: through the real workspace, a diff's new executable file
// is created 0755, and deleting a directory says what to do instead
// (finding 16a).
func TestFormatEdges(t *testing.T) {
	f := newFixture(t)
	f.write("src/a.py", "a\n", 0o644)
	diff := "diff --git a/bin/run.sh b/bin/run.sh\nnew file mode 100755\n--- /dev/null\n+++ b/bin/run.sh\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+echo hi\n"
	body, _ := json.Marshal(map[string]any{"id": "X1", "role": "r", "patch": map[string]string{"diff": diff}})
	f.submitBody("X1", string(body))
	f.submitBody("X2", `{"id":"X2","role":"r","patch":{"apply_patch":"*** Begin Patch\n*** Delete File: src\n*** End Patch"}}`)
	f.run()
	if p := f.settle("X1"); p.State != store.StateApplied {
		t.Fatalf("X1: %s %s", p.State, p.Error)
	}
	if fi, err := os.Stat(filepath.Join(f.ws, "bin/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("new file mode 100755 gave %v, %v; want 0755", fi.Mode().Perm(), err)
	}
	want := "cannot delete src: it is a directory, and a patch deletes files one by one: delete each file under it"
	if p := f.settle("X2"); p.State != store.StateFailed || p.Error != want {
		t.Errorf("X2: %s %q, want failed with %q", p.State, p.Error, want)
	}
	if f.read("src/a.py") != "a\n" {
		t.Errorf("src/a.py changed by a refused deletion")
	}
}
