package worker

import (
	"context"
	"os/exec"
	"testing"

	"github.com/patchd/patchd/internal/store"
)

// gitFixture is a fixture with --git on, its workspace a repository with
// one commit of files (name, content pairs).
func gitFixture(t *testing.T, files ...string) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	f := newFixture(t)
	f.git = true
	f.store.Close()
	f.open()
	for i := 0; i+1 < len(files); i += 2 {
		f.write(files[i], files[i+1], 0o644)
	}
	gitCmd(t, f.ws, "init", "-q")
	gitCmd(t, f.ws, "add", ".")
	gitCmd(t, f.ws, "commit", "-qm", "initial")
	return f
}

// Finding 14: a target path is a file name, never a pathspec. Reverting a
// patch to a file literally named "*" once staged and committed every
// dirty and untracked file of the workspace.
func TestGitPathsAreLiteral(t *testing.T) {
	f := gitFixture(t, "*", "star\n", "b.txt", "b\n", "src/app.py", "x = 1\n")
	f.submit("S1", "*", "star", "moon")
	f.run()
	if p := f.settle("S1"); p.State != store.StateApplied {
		t.Fatalf("S1: %s %s, want applied", p.State, p.Error)
	}
	// The user goes on working: an unfinished edit and a secrets file.
	f.write("b.txt", "b, half done\n", 0o644)
	f.write("secrets.env", "TOKEN=hunter2\n", 0o600)
	if _, err := f.worker.Revert(context.Background(), "S1"); err != nil {
		t.Fatalf("revert S1: %v", err)
	}
	if got := gitCmd(t, f.ws, "show", "--name-only", "--format=%s", "HEAD"); got != "[REVERT S1] desc of S1\n\n*" {
		t.Errorf("revert commit = %q, want only the file named *", got)
	}
	if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "M b.txt\n?? secrets.env" {
		t.Errorf("git status after the revert = %q, want b.txt modified but unstaged and secrets.env untracked", got)
	}

	// A patch to "*" while other files are dirty is not refused for them.
	f.submit("S2", "*", "star", "sun")
	if p := f.settle("S2"); p.State != store.StateApplied {
		t.Errorf("S2: %s %q, want applied: only * must be clean", p.State, p.Error)
	}
	if got := gitCmd(t, f.ws, "show", "--name-only", "--format=", "HEAD"); got != "*" {
		t.Errorf("S2's commit holds %q, want only *", got)
	}
}
