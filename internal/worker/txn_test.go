package worker

import (
	"context"
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
		p.State, p.StartedAt, p.Matches = store.StateApplying, time.Now(), 1
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
