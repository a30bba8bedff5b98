package worker

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

func TestChecks(t *testing.T) {
	f := newFixture(t)
	f.checks = []config.Check{
		{Name: "no-bad-words", Command: []string{"sh", "-c", "! grep -rn forbidden --include=*.py . && echo clean"}, Timeout: 10 * time.Second, Paths: []string{"*.py"}},
		{Name: "never-for-txt", Command: []string{"false"}, Timeout: time.Second, Paths: []string{"docs/*.md"}},
	}
	f.store.Close()
	f.open()
	f.write("src/app.py", "x = 'allowed'\n", 0o644)
	f.write("notes.txt", "allowed\n", 0o644)
	f.submit("ok", "src/app.py", "allowed", "fine")
	f.submit("bad", "src/app.py", "fine", "forbidden")
	f.submit("txt", "notes.txt", "allowed", "forbidden") // no check matches *.txt
	f.run()
	if p := f.settle("ok"); p.State != store.StateApplied {
		t.Errorf("ok: %s %s, want applied", p.State, p.Error)
	}
	p := f.settle("bad")
	if p.State != store.StateFailed || !strings.Contains(p.Error, `check "no-bad-words" failed (exit code 1`) || !strings.Contains(p.Error, "forbidden") {
		t.Errorf("bad: %s %q, want failed with the check's name, status and output", p.State, p.Error)
	}
	if got := f.read("src/app.py"); got != "x = 'fine'\n" {
		t.Errorf("after a failing check the file = %q, want the patch undone", got)
	}
	if !strings.Contains(f.summary("bad"), "no-bad-words") {
		t.Errorf("summary of a patch failed by a check lacks the check")
	}
	if p := f.settle("txt"); p.State != store.StateApplied {
		t.Errorf("txt: %s %s, want applied (no check applies)", p.State, p.Error)
	}
}

func TestCheckTimeout(t *testing.T) {
	f := newFixture(t)
	f.checks = []config.Check{{Name: "slow", Command: []string{"sleep", "30"}, Timeout: 200 * time.Millisecond}}
	f.store.Close()
	f.open()
	f.write("a.txt", "a\n", 0o644)
	f.submit("slow", "a.txt", "a", "b")
	f.run()
	if p := f.settle("slow"); p.State != store.StateFailed || !strings.Contains(p.Error, "timed out after 200ms") {
		t.Errorf("state %s error %q, want failed by the timeout", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "a\n" {
		t.Errorf("file = %q, want undone", got)
	}
}

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestGitMode(t *testing.T) {
	f := gitFixture(t, "src/app.py", "print('hello')\n", "other.py", "x = 1\n")

	body := `{"id":"G1","role":"ui_patch","target_file":"src/app.py","description":"Greet the world\nmore text","tag":"v1.2.3",` +
		`"patch":{"pattern":"hello","replacement":"world"},"metadata":{"author":"Ada Lovelace"}}`
	f.store.Submit(context.Background(), store.Patch{ID: "G1", Target: "src/app.py", Description: "Greet the world\nmore text"}, []byte(body))
	f.run()
	if p := f.settle("G1"); p.State != store.StateApplied {
		t.Fatalf("G1: %s %s", p.State, p.Error)
	}
	if got := gitCmd(t, f.ws, "log", "-1", "--format=%s|%an"); got != "[PATCH G1] Greet the world|Ada Lovelace" {
		t.Errorf("last commit = %q, want the patch's subject and author", got)
	}
	if got := gitCmd(t, f.ws, "tag", "--points-at", "HEAD"); got != "v1.2.3" {
		t.Errorf("tag at HEAD = %q, want v1.2.3", got)
	}
	if got := gitCmd(t, f.ws, "rev-list", "--count", "HEAD"); got != "2" {
		t.Errorf("commits = %s, want 2 (one per patch)", got)
	}

	if _, err := f.worker.Revert(context.Background(), "G1"); err != nil {
		t.Fatal(err)
	}
	if got := gitCmd(t, f.ws, "log", "-1", "--format=%s"); got != "[REVERT G1] Greet the world" {
		t.Errorf("last commit after revert = %q", got)
	}
	if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
		t.Errorf("git status after revert = %q, want clean", got)
	}

	// Uncommitted changes to a file the patch touches: refused, named.
	f.write("other.py", "x = 2  # local edit\n", 0o644)
	f.submit("G2", "other.py", "x", "y")
	if p := f.settle("G2"); p.State != store.StateFailed || !strings.Contains(p.Error, "uncommitted changes to other.py") {
		t.Errorf("G2: %s %q, want refused naming other.py", p.State, p.Error)
	}
	if got := f.read("other.py"); got != "x = 2  # local edit\n" {
		t.Errorf("other.py = %q, want the local edit untouched", got)
	}
}

// TestRecoverRunsChecks: a patch whose files were written when a crash
// (or a kill during a slow check) cut it short is not recorded applied
// unless its checks pass now: the checks had not run, or not to the end.
func TestRecoverRunsChecks(t *testing.T) {
	for _, tt := range []struct {
		name      string
		check     string
		wantState store.State
		wantFile  string
	}{
		{"failing check", "! grep -q aa f.txt", store.StateFailed, "a\n"},
		{"passing check", "grep -q aa f.txt", store.StateApplied, "aa\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.checks = []config.Check{{Name: "no-aa", Command: []string{"sh", "-c", tt.check}, Timeout: 30 * time.Second}}
			f.store.Close()
			f.open()
			f.write("f.txt", "a\n", 0o644)
			f.submit("C1", "f.txt", "a", "aa")
			ctx := context.Background()
			if err := f.store.PutBlob("C1", blobName(0), []byte("a\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Update(ctx, "C1", func(p *store.Patch) error {
				p.State, p.StartedAt = store.StateApplying, time.Now()
				p.Files = []store.FileChange{{Path: "f.txt", OldHash: hash([]byte("a\n")), NewHash: hash([]byte("aa\n")), OldMode: 0o644, Existed: true}}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			f.write("f.txt", "aa\n", 0o644) // written; the check never finished
			f.store.Close()
			f.open()
			f.run()
			p := f.settle("C1")
			if p.State != tt.wantState {
				t.Errorf("state = %s (%s), want %s", p.State, p.Error, tt.wantState)
			}
			if tt.wantState == store.StateFailed && !strings.Contains(p.Error, `check "no-aa" failed`) {
				t.Errorf("error = %q, want the check's failure", p.Error)
			}
			if got := f.read("f.txt"); got != tt.wantFile {
				t.Errorf("file = %q, want %q", got, tt.wantFile)
			}
		})
	}
}
