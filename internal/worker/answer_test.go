package worker

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// noMachinePath fails the test when an answer names f's directory (the
// workspace's, or any above it in the test's temporary directory) by its
// absolute path.
func (f *fixture) noMachinePath(what, answer string) {
	f.t.Helper()
	for _, dir := range []string{f.dir, realPath(f.dir)} {
		if strings.Contains(answer, dir) {
			f.t.Errorf("%s = %q, which names the machine's path %s", what, answer, dir)
			return
		}
	}
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// TestGitErrorsNameNoMachinePath: what --git answers (the error a patch
// fails with, a preview's refusal) names files relative to the workspace,
// never by their absolute path on this machine: git's own messages
// (fatal: Unable to create '/tmp/…/.git/index.lock'), patchd's about the
// repository, a workspace outside any repository.
func TestGitErrorsNameNoMachinePath(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	t.Run("no repository", func(t *testing.T) {
		f := newFixture(t)
		f.git = true
		f.store.Close()
		f.open()
		f.write("a.py", "x = 1\n", 0o644)
		// No repository above the test's directory either.
		t.Setenv("GIT_CEILING_DIRECTORIES", f.dir)
		blk, err := patch.Parse([]byte(`{"id":"p","role":"r","target_file":"a.py","patch":{"pattern":"1","replacement":"2"}}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.worker.Preview(t.Context(), blk)
		if err == nil || !strings.Contains(err.Error(), "not a git repository") {
			t.Fatalf("Preview = %v, want git's refusal", err)
		}
		f.noMachinePath("Preview's refusal", err.Error())
		f.run()
		f.submit("P1", "a.py", "1", "2")
		p := f.settle("P1")
		if p.State != store.StateFailed || !strings.Contains(p.Error, "not a git repository") || p.Code != CodeGitFailed {
			t.Errorf("P1: %s %q (code %q), want failed by git, %s", p.State, p.Error, p.Code, CodeGitFailed)
		}
		f.noMachinePath("P1's error", p.Error)
	})
	t.Run("index locked", func(t *testing.T) {
		f := gitFixture(t, "a.py", "x = 1\n")
		mustWrite(t, filepath.Join(f.ws, ".git", "index.lock"), "")
		f.run()
		f.submit("P1", "a.py", "1", "2")
		p := f.settle("P1")
		if p.State != store.StateFailed || !strings.Contains(p.Error, "index.lock") || p.Code != CodeGitFailed {
			t.Errorf("P1: %s %q (code %q), want failed by git add, %s", p.State, p.Error, p.Code, CodeGitFailed)
		}
		f.noMachinePath("P1's error", p.Error)
		if !strings.Contains(p.Error, "'.git/index.lock'") {
			t.Errorf("P1's error = %q, want it to name .git/index.lock from the workspace", p.Error)
		}
	})
	t.Run("repository above", func(t *testing.T) {
		f := gitFixtureAt(t, true, "a.py", "x = 1\n")
		f.submitBody("plant", fileEdits("plant", nil, "HEAD", "", "ref: refs/heads/master\n"))
		f.run()
		p := f.settle("plant")
		if p.State != store.StateFailed || !strings.Contains(p.Error, `the repository above the workspace (..)`) || p.Code != CodePathProtected {
			t.Errorf("plant: %s %q (code %q), want refused naming the repository as .., %s", p.State, p.Error, p.Code, CodePathProtected)
		}
		f.noMachinePath("plant's error", p.Error)
	})
}

// TestCheckOutputNamesNoMachinePath: a failed check's output, which the
// patch's error quotes, names the workspace relative to itself.
func TestCheckOutputNamesNoMachinePath(t *testing.T) {
	f := newFixture(t)
	f.checks = []config.Check{{Name: "pwd", Command: []string{"sh", "-c", `echo "in $PWD, tmp $TMPDIR"; echo "$PWD/src/a.py:1: bad"; exit 1`}, Timeout: 30 * time.Second}}
	f.store.Close()
	f.open()
	f.write("a.py", "x = 1\n", 0o644)
	f.run()
	f.submit("P1", "a.py", "1", "2")
	p := f.settle("P1")
	if p.State != store.StateFailed || p.Code != CodeCheckFailed || !strings.Contains(p.Error, "src/a.py:1: bad") {
		t.Errorf("P1: %s %q (code %q), want failed by its check, %s", p.State, p.Error, p.Code, CodeCheckFailed)
	}
	f.noMachinePath("P1's error", p.Error)
	if tmp := os.TempDir(); strings.Contains(p.Error, tmp+"/patchd-check-") {
		t.Errorf("P1's error = %q, which names the check's temporary directory", p.Error)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRelative: the paths answer knows are made relative to the workspace
// wherever they stand in a message, as whole paths only.
func TestRelative(t *testing.T) {
	base := realPath(t.TempDir())
	ws := filepath.Join(base, "repo", "ws")
	mustWrite(t, filepath.Join(ws, "a.txt"), "a\n")
	mustNoErr(t, os.Symlink(ws, filepath.Join(base, "link")))
	f := newFixture(t)
	w := New(Options{Store: f.store, Workspace: openWorkspace(t, filepath.Join(base, "link")), Protect: []string{filepath.Join(base, "state")}})
	w.repo = &gitRepo{top: filepath.Join(base, "repo"), gitDir: filepath.Join(base, "repo", ".git")}
	tests := []struct{ in, want string }{
		{"read " + ws + "/a.txt: denied", "read a.txt: denied"},
		{"the workspace " + ws + ": gone", "the workspace .: gone"},
		{"via " + filepath.Join(base, "link") + "/a.txt", "via a.txt"},
		{"fatal: Unable to create '" + base + "/repo/.git/index.lock'", "fatal: Unable to create '../.git/index.lock'"},
		{"above (" + base + "/repo), at " + base + "/repo/x", "above (..), at ../x"},
		{"protected path " + base + "/state/token", "protected path ../../state/token"},
		{"other " + ws + "2/a.txt and " + base + "/repo2", "other ../ws2/a.txt and " + base + "/repo2"},
		{"nothing to change", "nothing to change"},
	}
	for _, tt := range tests {
		if got := w.relative(tt.in); got != tt.want {
			t.Errorf("relative(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	err := errorf(CodeGitFailed, "git add: %s", ws+"/.git/index.lock")
	if a := w.answer(err); a.Error() != "git add: .git/index.lock" || codeOf(a) != CodeGitFailed || !errors.Is(a, err) {
		t.Errorf("answer(%q) = %q (code %q), want it relative, with its code and cause", err, a, codeOf(a))
	}
}

func openWorkspace(t *testing.T, dir string) *workspace.Workspace {
	t.Helper()
	ws, err := workspace.Open(dir)
	mustNoErr(t, err)
	t.Cleanup(func() { ws.Close() })
	return ws
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
