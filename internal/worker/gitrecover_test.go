package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// crashApplying leaves patch id as a crash of the worker would: recorded
// applying with the file f.txt's hashes ("a\n" before, "aa\n" after), and
// the file as onDisk. With committed, the patch's own commit (made by the
// worker's gitCommit of "aa\n", with the subject, author and tag a normal
// apply gives it) had been made before the crash. The store is closed: the
// next open is the restart.
func crashApplying(f *fixture, id, body, onDisk string, committed bool, author, tag string) {
	t := f.t
	t.Helper()
	f.submitBody(id, body)
	ctx := context.Background()
	if _, err := f.store.Update(ctx, id, func(p *store.Patch) error {
		p.State, p.StartedAt = store.StateApplying, time.Now()
		p.Files = []store.FileChange{{Path: "f.txt", OldHash: hash([]byte("a\n")), NewHash: hash([]byte("aa\n")), OldMode: 0o644, Existed: true}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutBlob(id, blobName(0), []byte("a\n")); err != nil {
		t.Fatal(err)
	}
	if committed {
		f.write("f.txt", "aa\n", 0o644)
		tx := &txn{files: []txnFile{{path: "f.txt"}}}
		if _, err := f.worker.gitCommit(tx, commitSubject("PATCH", id, "desc of "+id), author, tag); err != nil {
			t.Fatal(err)
		}
	}
	f.write("f.txt", onDisk, 0o644)
	f.store.Close()
}

// patchCommits counts the commits whose subject names the patch.
func patchCommits(f *fixture, kind, id string) int {
	n := 0
	for s := range strings.SplitSeq(gitCmd(f.t, f.ws, "log", "--format=%s"), "\n") {
		if strings.HasPrefix(s, "["+kind+" "+id+"] ") {
			n++
		}
	}
	return n
}

// TestGitRecoverApply: with --git, a patch a crash left applying is
// settled with exactly one commit of its own, whichever side of the write
// and of the commit the crash came: not written (applied and committed
// now), written but not committed (committed now, with the patch's
// subject, author and tag), committed but not recorded (recorded, not
// committed twice; a tag the crash cut off is added). The work tree is
// clean after, and the next patch to the file applies. A commit left
// behind by a crash while the patch was being undone is dropped, and the
// patch applied again with one commit.
func TestGitRecoverApply(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onDisk    string
		committed bool
		tagged    bool // the tag was made before the crash too
	}{
		{"crash before the write", "a\n", false, false},
		{"crash after the write, before the commit", "aa\n", false, false},
		{"crash after the commit, before the tag", "aa\n", true, false},
		{"crash after the commit and tag, before the record", "aa\n", true, true},
		// The record failed (a full disk), the files were put back, and
		// the crash came before the commit was dropped (record).
		{"crash undoing a commit whose record failed", "a\n", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gitFixture(t, "f.txt", "a\n")
			body := `{"id":"C1","role":"r","target_file":"f.txt","description":"desc of C1","tag":"v1",` +
				`"patch":{"pattern":"a","replacement":"aa"},"metadata":{"author":"Ada <ada@example.com>"}}`
			tag := ""
			if tc.tagged {
				tag = "v1"
			}
			crashApplying(f, "C1", body, tc.onDisk, tc.committed, "Ada <ada@example.com>", tag)
			f.open()
			f.run()
			if p := f.settle("C1"); p.State != store.StateApplied {
				t.Fatalf("C1 after the restart: %s %q, want applied", p.State, p.Error)
			}
			if got := f.read("f.txt"); got != "aa\n" {
				t.Errorf("f.txt = %q, want the patch applied once", got)
			}
			if n := patchCommits(f, "PATCH", "C1"); n != 1 {
				t.Errorf("%d commits of C1, want exactly 1:\n%s", n, gitCmd(t, f.ws, "log", "--format=%h %s"))
			}
			if got := gitCmd(t, f.ws, "log", "-1", "--format=%s|%an <%ae>"); got != "[PATCH C1] desc of C1|Ada <ada@example.com>" {
				t.Errorf("HEAD = %q, want the patch's subject and author", got)
			}
			if got := gitCmd(t, f.ws, "tag", "--points-at", "HEAD"); got != "v1" {
				t.Errorf("tags at HEAD = %q, want v1", got)
			}
			if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
				t.Errorf("git status = %q, want clean", got)
			}
			f.submit("C2", "f.txt", "aa", "bb")
			if p := f.settle("C2"); p.State != store.StateApplied {
				t.Fatalf("the next patch to f.txt: %s %q, want applied", p.State, p.Error)
			}
			if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
				t.Errorf("git status after C2 = %q, want clean", got)
			}
		})
	}
}

// TestGitPreviewRefusesAsApply: under --git a preview refuses what apply
// refuses, with the same message: a bad metadata.author, a
// .gitattributes or .gitmodules file, git's own names at the top of a
// workspace below the repository, uncommitted changes to a target. A
// preview of a patch apply takes still shows its diff.
func TestGitPreviewRefusesAsApply(t *testing.T) {
	// The repository is above the workspace.
	f := gitFixtureAt(t, true, "a.py", "x = 1\n", "b.py", "y = 1\n")
	f.write("b.py", "y = 2  # unfinished\n", 0o644)
	bodies := map[string]string{
		"author":     `{"id":"author","role":"r","target_file":"a.py","patch":{"pattern":"1","replacement":"2"},"metadata":{"author":"<>"}}`,
		"attributes": fileEdits("attributes", nil, "a.py", "1", "2", "sub/.GitAttributes", "", "*.py ident\n"),
		"modules":    fileEdits("modules", nil, ".gitmodules", "", "[submodule \"x\"]\n"),
		"head":       fileEdits("head", nil, "HEAD", "", "ref: refs/heads/master\n"),
		"refs":       fileEdits("refs", nil, "a.py", "1", "2", "refs/heads/x", "", "x\n"),
		"dirty":      `{"id":"dirty","role":"r","target_file":"b.py","patch":{"pattern":"y","replacement":"z"}}`,
	}
	previews := map[string]error{}
	for id, body := range bodies {
		blk, err := patch.Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		_, _, previews[id] = f.worker.Preview(context.Background(), blk)
		f.submitBody(id, body)
	}
	blk, err := patch.Parse([]byte(`{"id":"ok","role":"r","target_file":"a.py","patch":{"pattern":"1","replacement":"2"},"metadata":{"author":"Ada"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff, _, err := f.worker.Preview(context.Background(), blk); err != nil || !strings.Contains(diff, "+x = 2") {
		t.Errorf("preview of a good patch: %q %v, want its diff", diff, err)
	}
	f.run()
	for id := range bodies {
		p := f.settle(id)
		if p.State != store.StateFailed {
			t.Errorf("%s: applied %s, want failed", id, p.State)
			continue
		}
		if previews[id] == nil || previews[id].Error() != p.Error {
			t.Errorf("%s: preview said %v, apply failed with %q: want the same refusal", id, previews[id], p.Error)
		}
	}
	// The uncommitted file is named as the patch names it, from the
	// workspace, not from the repository's top.
	if p, _ := f.store.Get("dirty"); !strings.HasPrefix(p.Error, "uncommitted changes to b.py: ") {
		t.Errorf("dirty: %q, want it to name b.py", p.Error)
	}
	if got := gitCmd(t, f.dir, "status", "--porcelain", "--", "ws"); got != "M ws/b.py" {
		t.Errorf("git status = %q, want only the unfinished b.py", got)
	}
}

// TestGitRevertCutShort: with --git, a revert a crash cut short ends with
// exactly one revert commit, a clean work tree and the patch reverted,
// whichever side of the commit the crash came: after the files were
// restored (all, or one of two) and before the commit, asking again
// finishes it (commits and records it); after the commit and before the
// record, the restart records it without a second commit. The next patch
// to the files applies.
func TestGitRevertCutShort(t *testing.T) {
	for _, tc := range []struct {
		name      string
		restored  []string // files the revert had restored at the crash
		committed bool     // the revert's commit was made
	}{
		{"crash after restoring the files, before the commit", []string{"f.txt", "g.txt"}, false},
		{"crash after restoring one of two files", []string{"g.txt"}, false},
		{"crash after the commit, before the record", []string{"f.txt", "g.txt"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := gitFixture(t, "f.txt", "a\n", "g.txt", "b\n")
			body := fileEdits("R1", map[string]any{"description": "desc of R1"}, "f.txt", "a", "aa", "g.txt", "b", "bb")
			if _, _, err := f.store.Submit(context.Background(), store.Patch{ID: "R1", Description: "desc of R1"}, []byte(body)); err != nil {
				t.Fatal(err)
			}
			f.run()
			if p := f.settle("R1"); p.State != store.StateApplied {
				t.Fatalf("R1: %s %q", p.State, p.Error)
			}
			f.stop()
			// The revert, cut short: what it restored, and its commit.
			old := map[string]string{"f.txt": "a\n", "g.txt": "b\n"}
			for _, name := range tc.restored {
				f.write(name, old[name], 0o644)
			}
			if tc.committed {
				tx := &txn{files: []txnFile{{path: "f.txt"}, {path: "g.txt"}}}
				if _, err := f.worker.gitCommit(tx, commitSubject("REVERT", "R1", "desc of R1"), "", ""); err != nil {
					t.Fatal(err)
				}
			}
			f.store.Close()
			f.open()
			f.run()
			if tc.committed {
				deadline := time.Now().Add(10 * time.Second)
				for p, _ := f.store.Get("R1"); p.State != store.StateReverted; p, _ = f.store.Get("R1") {
					if time.Now().After(deadline) {
						t.Fatalf("R1 after the restart: %s, want reverted by the restart", p.State)
					}
					time.Sleep(5 * time.Millisecond)
				}
			} else {
				p, err := f.worker.Revert(context.Background(), "R1")
				if err != nil || p.State != store.StateReverted {
					t.Fatalf("asking again: %s %v, want the revert finished", p.State, err)
				}
			}
			if _, err := f.worker.Revert(context.Background(), "R1"); !errors.Is(err, ErrNotApplied) {
				t.Errorf("one more revert = %v, want ErrNotApplied", err)
			}
			if got := f.read("f.txt") + f.read("g.txt"); got != "a\nb\n" {
				t.Errorf("files = %q, want both restored", got)
			}
			if n := patchCommits(f, "REVERT", "R1"); n != 1 {
				t.Errorf("%d revert commits of R1, want exactly 1:\n%s", n, gitCmd(t, f.ws, "log", "--format=%h %s"))
			}
			if got := gitCmd(t, f.ws, "show", "--name-only", "--format=%s", "HEAD"); got != "[REVERT R1] desc of R1\n\nf.txt\ng.txt" {
				t.Errorf("HEAD = %q, want the revert of both files", got)
			}
			if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
				t.Errorf("git status = %q, want clean", got)
			}
			f.submit("R2", "f.txt", "a", "c")
			if p := f.settle("R2"); p.State != store.StateApplied {
				t.Fatalf("the next patch to f.txt: %s %q, want applied", p.State, p.Error)
			}
		})
	}
}

// TestRevertCutShort: without --git too, a revert that a crash cut short
// after it restored one file of two is finished by asking again, instead
// of being refused for good as a change to the files.
func TestRevertCutShort(t *testing.T) {
	f := newFixture(t)
	f.write("f.txt", "a\n", 0o644)
	f.write("g.txt", "b\n", 0o644)
	f.submitBody("R1", fileEdits("R1", nil, "f.txt", "a", "aa", "g.txt", "b", "bb"))
	f.run()
	if p := f.settle("R1"); p.State != store.StateApplied {
		t.Fatalf("R1: %s %q", p.State, p.Error)
	}
	f.stop()
	f.write("g.txt", "b\n", 0o644) // restored before the crash
	f.store.Close()
	f.open()
	if p, err := f.worker.Revert(context.Background(), "R1"); err != nil || p.State != store.StateReverted {
		t.Fatalf("asking again: %s %v, want the revert finished", p.State, err)
	}
	if got := f.read("f.txt") + f.read("g.txt"); got != "a\nb\n" {
		t.Errorf("files = %q, want both restored", got)
	}
}
