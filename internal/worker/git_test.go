package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/store"
)

// gitFixture is a fixture with --git on, its workspace a repository with
// one commit of files (name, content pairs).
func gitFixture(t *testing.T, files ...string) *fixture {
	t.Helper()
	return gitFixtureAt(t, false, files...)
}

// gitFixtureAt is gitFixture with the repository at the workspace's top,
// or (above) one directory up, the workspace a subdirectory of it.
func gitFixtureAt(t *testing.T, above bool, files ...string) *fixture {
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
	top, add := f.ws, "."
	if above {
		top, add = f.dir, filepath.Base(f.ws)
	}
	gitCmd(t, top, "init", "-q")
	gitCmd(t, top, "add", add)
	gitCmd(t, top, "commit", "-qm", "initial")
	return f
}

// Finding 14: a target path is a file name, never a pathspec. Reverting a
// patch to a file literally named "*" once staged and committed every
// dirty and untracked file of the workspace.
func TestGitPathsAreLiteral(t *testing.T) {
	f := gitFixture(t, "*", "star\n", "b.txt", "b\n", "src/app.py", "x = 1\n")
	f.submit("S1", "*", "star", "moon")
	f.run()
	p := f.settle("S1")
	if p.State != store.StateApplied {
		t.Fatalf("S1: %s %s, want applied", p.State, p.Error)
	}
	// The patch records the commit that holds it (the dashboard and the
	// API show it).
	if head := gitCmd(t, f.ws, "rev-parse", "--short", "HEAD"); p.Commit == "" || p.Commit != head {
		t.Errorf("S1's commit = %q, want HEAD %q", p.Commit, head)
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

// Finding 13: an author git refuses fails the patch before anything is
// written, naming metadata.author.
func TestGitAuthorCheckedFirst(t *testing.T) {
	f := gitFixture(t, "a.py", "x = 1\n")
	for i, author := range []string{"<>", "...", " <a@b>", "a <b> c", "a <b@c>>"} {
		id := fmt.Sprintf("A%d", i)
		f.submitBody(id, fmt.Sprintf(`{"id":%q,"role":"r","target_file":"a.py","patch":{"pattern":"1","replacement":"2"},"metadata":{"author":%q}}`, id, author))
	}
	f.run()
	for i, author := range []string{"<>", "...", " <a@b>", "a <b> c", "a <b@c>>"} {
		p := f.settle(fmt.Sprintf("A%d", i))
		if p.State != store.StateFailed || !strings.Contains(p.Error, "metadata.author") {
			t.Errorf("author %q: %s %q, want failed naming metadata.author", author, p.State, p.Error)
		}
		if len(p.Files) != 0 {
			t.Errorf("author %q: files %v, want refused before anything is written", author, p.Files)
		}
	}
	if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
		t.Errorf("git status = %q, want clean", got)
	}
	f.submitBody("ok", `{"id":"ok","role":"r","target_file":"a.py","patch":{"pattern":"1","replacement":"2"},"metadata":{"author":"Ada <ada@example.com>"}}`)
	if p := f.settle("ok"); p.State != store.StateApplied {
		t.Fatalf("ok: %s %s", p.State, p.Error)
	}
	if got := gitCmd(t, f.ws, "log", "-1", "--format=%an <%ae>"); got != "Ada <ada@example.com>" {
		t.Errorf("author = %q", got)
	}
}

// Finding 13: a commit that fails after the files were staged leaves
// neither the files nor the index changed.
func TestGitFailedCommitUndoesIndex(t *testing.T) {
	f := gitFixture(t, "a.py", "x = 1\n")
	branch := gitCmd(t, f.ws, "symbolic-ref", "--short", "HEAD")
	lock := filepath.Join(f.ws, ".git", "refs", "heads", branch+".lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.submit("L1", "a.py", "1", "2")
	f.submitBody("L2", `{"id":"L2","role":"r","edits":[{"diff":"--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+y = 1\n"}]}`)
	f.run()
	for _, id := range []string{"L1", "L2"} {
		if p := f.settle(id); p.State != store.StateFailed || !strings.Contains(p.Error, "commit the patch") {
			t.Errorf("%s: %s %q, want failed by the commit", id, p.State, p.Error)
		}
	}
	if got := f.read("a.py"); got != "x = 1\n" {
		t.Errorf("a.py = %q, want restored", got)
	}
	if got := gitCmd(t, f.ws, "status", "--porcelain"); got != "" {
		t.Errorf("git status = %q, want clean: the index must be undone too", got)
	}
}

// fileEdits is a patch body whose edits turn each file's old content (""
// for a new file) into the new: path, old, new triples.
func fileEdits(id string, extra map[string]any, triples ...string) string {
	var edits []map[string]string
	for i := 0; i+2 < len(triples); i += 3 {
		edits = append(edits, map[string]string{"target_file": triples[i], "search": triples[i+1], "replace": triples[i+2]})
	}
	m := map[string]any{"id": id, "role": "r", "edits": edits}
	for k, v := range extra {
		m[k] = v
	}
	body, _ := json.Marshal(m)
	return string(body)
}

// noMarker fails the test if a hostile command left its marker.
func noMarker(t *testing.T, marker string) {
	t.Helper()
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: a command the patch planted ran", filepath.Base(marker))
	}
}

// Finding 2: with the repository above the workspace, a patch planting
// HEAD, objects/, refs/ and config at the top of the workspace made git
// take the workspace for a repository, run its core.fsmonitor and commit
// there. Such a patch is refused, naming the path; and git is pinned to
// the repository found at the start even when those files appear anyway.
func TestGitWorkspaceBelowRepository(t *testing.T) {
	f := gitFixtureAt(t, true, "a.py", "x = 1\n")
	marker := filepath.Join(f.dir, "outside", "fsmonitor-ran")
	planted := []string{
		"HEAD", "", "ref: refs/heads/master\n",
		"config", "", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = " + f.dir + "\n\tfsmonitor = touch " + marker + "\n",
		"objects/info/keep", "", "x\n",
		"refs/heads/keep", "", "x\n",
	}
	f.submitBody("plant", fileEdits("plant", nil, planted...))
	f.submitBody("plant-refs", fileEdits("plant-refs", nil, "Refs/x", "", "x\n"))
	f.submitBody("ok-hooks-dir", fileEdits("ok-hooks-dir", nil, "hooks/useThing.js", "", "export {}\n", "info/x", "", "x\n"))
	f.run()
	if p := f.settle("plant"); p.State != store.StateFailed || !strings.Contains(p.Error, `"HEAD"`) || !strings.Contains(p.Error, "git") {
		t.Errorf("plant: %s %q, want refused naming HEAD", p.State, p.Error)
	}
	if p := f.settle("plant-refs"); p.State != store.StateFailed || !strings.Contains(p.Error, `"Refs/x"`) {
		t.Errorf("plant-refs: %s %q, want refused naming Refs/x", p.State, p.Error)
	}
	if p := f.settle("ok-hooks-dir"); p.State != store.StateApplied {
		t.Errorf("ok-hooks-dir: %s %q, want applied: hooks/ and info/ are not refused", p.State, p.Error)
	}
	for _, name := range []string{"HEAD", "config", "objects", "refs", "Refs"} {
		if _, err := os.Lstat(filepath.Join(f.ws, name)); err == nil {
			t.Errorf("%s was written", name)
		}
	}
	noMarker(t, marker)

	// Planted by someone else after the start: patchd's git stays with
	// the repository it found.
	for i := 0; i+2 < len(planted); i += 3 {
		f.write(planted[i], planted[i+2], 0o644)
	}
	f.submit("after", "a.py", "1", "2")
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Errorf("after: %s %q, want applied", p.State, p.Error)
	}
	if got := gitCmd(t, f.dir, "log", "-1", "--format=%s", "--", "ws/a.py"); got != "[PATCH after] desc of after" {
		t.Errorf("last commit of ws/a.py in the real repository = %q, want the patch's", got)
	}
	noMarker(t, marker)

	// Found there at the next start, the planted repository is refused
	// (safe.bareRepository=explicit), not used.
	f.stop()
	f.store.Close()
	f.open()
	f.run()
	f.submit("restarted", "a.py", "2", "3")
	if p := f.settle("restarted"); p.State != store.StateFailed || !strings.Contains(p.Error, "bare repository") {
		t.Errorf("restarted: %s %q, want failed: git refuses the planted repository", p.State, p.Error)
	}
	if got := f.read("a.py"); got != "x = 2\n" {
		t.Errorf("a.py = %q, want untouched", got)
	}
	noMarker(t, marker)
}

// Finding 1: a config file a patch can write, included by the
// repository's config, ran its core.fsmonitor and its filters at
// patchd's next git command. The worker refuses to run git while such an
// include exists, naming it; nothing is written.
func TestGitRefusesIncludesIntoWorkspace(t *testing.T) {
	for _, key := range []string{"include.path", "includeIf.gitdir:/**.path"} {
		t.Run(key, func(t *testing.T) {
			f := gitFixture(t, "a.py", "x = 1\n")
			gitCmd(t, f.ws, "config", key, "../.gitconfig")
			marker := filepath.Join(f.dir, "outside", "ran")
			f.submitBody("evil", fileEdits("evil", nil,
				".gitconfig", "", "[core]\n\tfsmonitor = touch "+marker+"\n[filter \"evil\"]\n\tclean = touch "+marker+"\n",
				".gitattributes", "", "* filter=evil\n",
				"a.py", "1", "2"))
			f.submit("next", "a.py", "1", "3")
			f.run()
			for _, id := range []string{"evil", "next"} {
				if p := f.settle(id); p.State != store.StateFailed || !strings.Contains(p.Error, ".gitconfig") || !strings.Contains(p.Error, strings.ToLower(key)) {
					t.Errorf("%s: %s %q, want refused naming the include and .gitconfig", id, p.State, p.Error)
				}
			}
			if got := f.read(".gitconfig"); got != "" {
				t.Errorf(".gitconfig = %q, want not written", got)
			}
			noMarker(t, marker)
		})
	}
}

// Finding 1: hooks (husky's core.hooksPath in the work tree), core.fsmonitor,
// filters and signing programs that the user's config points at files in
// the work tree ran the files a patch had just written. patchd's git
// commands run none of them.
func TestGitRunsNothingFromTheWorkTree(t *testing.T) {
	hook := "#!/bin/sh\n. \"$(dirname \"$0\")/../tools/env.sh\"\n"
	f := gitFixture(t, "a.py", "x = 1\n", ".husky/pre-commit", hook, "tools/env.sh", "true\n",
		"tools/fmt.sh", "cat\n", "tools/gpg.sh", "#!/bin/sh\nexit 1\n", "tools/fsmon.sh", "#!/bin/sh\nexit 1\n")
	for _, h := range []string{"prepare-commit-msg", "commit-msg", "post-commit", "reference-transaction", "post-index-change", "pre-auto-gc"} {
		f.write(".husky/"+h, hook, 0o755)
	}
	os.Chmod(filepath.Join(f.ws, "tools/gpg.sh"), 0o755)
	os.Chmod(filepath.Join(f.ws, "tools/fsmon.sh"), 0o755)
	gitCmd(t, f.ws, "add", ".")
	gitCmd(t, f.ws, "commit", "-qm", "hooks")
	for k, v := range map[string]string{
		"core.hooksPath": ".husky", "filter.fmt.clean": "sh tools/fmt.sh", "commit.gpgSign": "true", "tag.gpgSign": "true",
		"gpg.program": filepath.Join(f.ws, "tools/gpg.sh"), "core.fsmonitor": filepath.Join(f.ws, "tools/fsmon.sh"), "gc.auto": "1",
	} {
		gitCmd(t, f.ws, "config", k, v)
	}
	f.write(".git/info/attributes", "*.py filter=fmt\n", 0o644)
	marker := filepath.Join(f.dir, "outside", "ran")
	touch := "touch " + marker + "\n"
	f.submitBody("evil", fileEdits("evil", map[string]any{"tag": "v1"},
		"tools/env.sh", "true\n", touch,
		"tools/fmt.sh", "cat\n", touch+"cat\n",
		"tools/gpg.sh", "exit 1\n", touch+"exit 1\n",
		"tools/fsmon.sh", "exit 1\n", touch+"exit 1\n",
		"a.py", "1", "2"))
	f.run()
	if p := f.settle("evil"); p.State != store.StateApplied {
		t.Fatalf("evil: %s %q, want applied", p.State, p.Error)
	}
	noMarker(t, marker)
	if got := gitCmd(t, f.ws, "tag", "--points-at", "HEAD"); got != "v1" {
		t.Errorf("tag = %q, want v1", got)
	}
	if got := gitCmd(t, f.ws, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "show", "HEAD:a.py"); got != "x = 2" {
		t.Errorf("committed a.py = %q, want the work tree's content, unfiltered", got)
	}
}

// Finding 1: a global git config inside the workspace (a workspace at or
// above the home directory) is a file a patch can write; patchd's git
// commands do not read it.
func TestGitIgnoresGlobalConfigInWorkspace(t *testing.T) {
	f := gitFixture(t, "a.py", "x = 1\n")
	t.Setenv("HOME", f.ws)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("GIT_CONFIG_GLOBAL", "") // restored after the test
	os.Unsetenv("GIT_CONFIG_GLOBAL")
	marker := filepath.Join(f.dir, "outside", "ran")
	f.submitBody("evil", fileEdits("evil", nil,
		".gitconfig", "", "[core]\n\tfsmonitor = touch "+marker+"\n",
		".config/git/config", "", "[core]\n\tfsmonitor = touch "+marker+"\n",
		"a.py", "1", "2"))
	f.submit("next", "a.py", "2", "3")
	f.run()
	for _, id := range []string{"evil", "next"} {
		if p := f.settle(id); p.State != store.StateApplied {
			t.Errorf("%s: %s %q, want applied", id, p.State, p.Error)
		}
	}
	noMarker(t, marker)
}

// Finding 1: git reads .gitattributes and .gitmodules when it commits; under
// --git a patch may not write them.
func TestGitRefusesAttributeFiles(t *testing.T) {
	f := gitFixture(t, "a.py", "x = 1\n", "sub/.gitattributes", "*.txt text\n")
	for i, path := range []string{".gitattributes", "sub/.GitAttributes", ".gitmodules", "deep/er/.gitattributes"} {
		id := fmt.Sprintf("attr%d", i)
		f.submitBody(id, fileEdits(id, nil, "a.py", "1", "2", path, "", "*.py ident\n"))
	}
	f.run()
	for i, path := range []string{".gitattributes", "sub/.GitAttributes", ".gitmodules", "deep/er/.gitattributes"} {
		if p := f.settle(fmt.Sprintf("attr%d", i)); p.State != store.StateFailed || !strings.Contains(p.Error, fmt.Sprintf("%q", path)) {
			t.Errorf("%s: %s %q, want refused naming it", path, p.State, p.Error)
		}
	}
	if got := f.read("a.py"); got != "x = 1\n" {
		t.Errorf("a.py = %q, want untouched", got)
	}
}

// Finding 1: the global attributes file inside the workspace (a workspace
// at the home directory) is not read: here "ident" would have committed
// "$Id$" instead of the file's text.
func TestGitIgnoresGlobalAttributesInWorkspace(t *testing.T) {
	f := gitFixture(t, "a.py", "x = 1\n")
	t.Setenv("HOME", f.ws)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("GIT_CONFIG_GLOBAL", "") // restored after the test
	os.Unsetenv("GIT_CONFIG_GLOBAL")
	f.submitBody("evil", fileEdits("evil", nil, ".config/git/attributes", "", "*.py ident\n", "a.py", "x = 1", "x = 1 # $Id: kept $"))
	f.run()
	if p := f.settle("evil"); p.State != store.StateApplied {
		t.Fatalf("evil: %s %q, want applied", p.State, p.Error)
	}
	if got := gitCmd(t, f.ws, "-c", "core.attributesFile=/dev/null", "show", "HEAD:a.py"); got != "x = 1 # $Id: kept $" {
		t.Errorf("committed a.py = %q, want the work tree's text", got)
	}
}

// Finding 1 (4a10c0a): git reads a relative core.attributesFile from the
// top of the work tree. With the workspace below the repository's top,
// one there (outside the workspace) is the user's and is read; one whose
// path leads into the workspace, which a patch can write, is not.
func TestGitRelativeAttributesFile(t *testing.T) {
	for _, tt := range []struct {
		name, attrs string
		patchWrites bool
		want        string
	}{
		{name: "outside the workspace", attrs: "attrs", want: "x = 1 # $Id$"},
		{name: "inside the workspace", attrs: "ws/attrs", patchWrites: true, want: "x = 1 # $Id: kept $"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := gitFixtureAt(t, true, "a.py", "x = 1\n")
			if filepath.Base(f.ws) != "ws" {
				t.Fatalf("the workspace is %s, want it named ws", f.ws)
			}
			gitCmd(t, f.dir, "config", "core.attributesFile", tt.attrs)
			edits := []string{"a.py", "x = 1", "x = 1 # $Id: kept $"}
			if tt.patchWrites {
				edits = append([]string{"attrs", "", "*.py ident\n"}, edits...)
			} else {
				if err := os.WriteFile(filepath.Join(f.dir, tt.attrs), []byte("*.py ident\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f.submitBody("P1", fileEdits("P1", nil, edits...))
			f.run()
			if p := f.settle("P1"); p.State != store.StateApplied {
				t.Fatalf("P1: %s %q, want applied", p.State, p.Error)
			}
			if got := gitCmd(t, f.dir, "-c", "core.attributesFile=/dev/null", "show", "HEAD:ws/a.py"); got != tt.want {
				t.Errorf("committed ws/a.py = %q, want %q (core.attributesFile %s)", got, tt.want, tt.attrs)
			}
		})
	}
}
