//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gitIn runs git in dir with a fixed identity and returns its output.
func gitIn(t *testing.T, dir string, args ...string) string {
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

// TestGitCrashBeforeCommit: with --git, the daemon is killed with -9 after
// it wrote a patch's file and before it committed it (by a check, which
// runs in between, killing its parent the first time it runs). After the
// restart the patch is applied with exactly one commit of its own (its
// subject, author and tag), the work tree is clean, and the next patch
// to the same file applies. Before, the recovered patch was marked
// applied but never committed, and the next one was refused for
// uncommitted changes to the file.
func TestGitCrashBeforeCommit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	e := newEnv(t)
	dir := t.TempDir()
	killed := filepath.Join(dir, "killed")
	cfg, _ := json.Marshal(map[string]any{"checks": []map[string]any{{
		"name":    "crash once",
		"command": []string{"sh", "-c", `test -e "$0" && exit 0; : > "$0"; kill -9 $PPID; sleep 5`, killed},
	}}})
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, e.ws, "init", "-q")
	gitIn(t, e.ws, "add", "a.txt")
	gitIn(t, e.ws, "commit", "-qm", "initial")

	pid, r := e.start("--git", "--config", cfgPath)
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	block := `{"id":"K1","role":"fix","target_file":"a.txt","description":"mark K1","tag":"k1",` +
		`"patch":{"pattern":"seed\\n","replacement":"seed+K1\n"},"metadata":{"author":"Ada <ada@example.com>"}}`
	if r := e.sendBlock(block); r.code != 0 {
		t.Fatalf("send K1: %s", r)
	}
	waitFor(t, 20*time.Second, "the check to kill the daemon", func() bool {
		_, err := os.Stat(killed)
		return err == nil && syscall.Kill(pid, 0) != nil
	})
	data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt"))
	if string(data) != "seed+K1\n" || gitIn(t, e.ws, "status", "--porcelain") != "M a.txt" {
		t.Fatalf("at the crash: a.txt = %q, git status %q; want the patch written, not committed", data, gitIn(t, e.ws, "status", "--porcelain"))
	}

	if _, r := e.start("--git", "--config", cfgPath); r.code != 0 {
		t.Fatalf("start after kill -9: %s", r)
	}
	show := func(id, state string) {
		t.Helper()
		var r result
		waitFor(t, 20*time.Second, id+" to be "+state, func() bool {
			r = e.run("patches", "show", id)
			return strings.Contains(r.stdout, "state: "+state) || strings.Contains(r.stdout, "state: failed")
		})
		if !strings.Contains(r.stdout, "state: "+state) {
			t.Fatalf("%s: %s, want %s", id, r.stdout, state)
		}
	}
	show("K1", "applied")
	if got := gitIn(t, e.ws, "log", "--format=%s|%an|%D"); !strings.HasPrefix(got, "[PATCH K1] mark K1|Ada|HEAD -> ") ||
		!strings.Contains(got, "tag: k1") || strings.Count(got, "[PATCH K1]") != 1 {
		t.Errorf("git log after the restart:\n%s\nwant exactly one commit of K1, at HEAD, by Ada, tagged k1", got)
	}
	if got := gitIn(t, e.ws, "status", "--porcelain"); got != "" {
		t.Errorf("git status after the restart = %q, want clean", got)
	}
	if r := e.sendBlock(`{"id":"K2","role":"fix","target_file":"a.txt","description":"mark K2","patch":{"pattern":"K1","replacement":"K2"}}`); r.code != 0 {
		t.Fatalf("send K2: %s", r)
	}
	show("K2", "applied")
	if got := gitIn(t, e.ws, "log", "-1", "--format=%s"); got != "[PATCH K2] mark K2" {
		t.Errorf("HEAD after K2 = %q", got)
	}
}

// TestGitDryRunRefusesAsApply: under --git, `patchd send --dry-run`
// refuses what the patch would fail with, in the same words: a bad
// metadata.author, a .gitattributes file. Before, the dry run showed the
// diff of a patch that apply then refused.
func TestGitDryRunRefusesAsApply(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, e.ws, "init", "-q")
	gitIn(t, e.ws, "add", "a.txt")
	gitIn(t, e.ws, "commit", "-qm", "initial")
	if _, r := e.start("--git"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	for _, tc := range []struct{ id, block, says string }{
		{"D1", `{"id":"D1","role":"fix","target_file":"a.txt","patch":{"pattern":"seed","replacement":"x"},"metadata":{"author":"<>"}}`, "metadata.author"},
		{"D2", `{"id":"D2","role":"fix","edits":[{"target_file":".gitattributes","search":"","replace":"*.txt filter=x\n"}]}`, ".gitattributes"},
	} {
		r := e.sendBlock(tc.block, "--dry-run")
		if r.code != 1 || !strings.Contains(r.stderr, "HTTP 422") || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%s: send --dry-run: %s, want exit 1, HTTP 422 naming %s", tc.id, r, tc.says)
			continue
		}
		if r := e.sendBlock(tc.block); r.code != 0 {
			t.Fatalf("send %s: %s", tc.id, r)
		}
		var show result
		waitFor(t, 20*time.Second, tc.id+" to fail", func() bool {
			show = e.run("patches", "show", tc.id)
			return strings.Contains(show.stdout, "state: failed")
		})
		_, refusal, _ := strings.Cut(strings.TrimSpace(r.stderr), "HTTP 422): ")
		if !strings.Contains(show.stdout, "error: "+refusal+"\n") {
			t.Errorf("%s: the dry run said %q, apply failed with:\n%s", tc.id, refusal, show.stdout)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt")); string(data) != "seed\n" || gitIn(t, e.ws, "status", "--porcelain") != "" {
		t.Errorf("a.txt = %q, git status %q: want nothing written", data, gitIn(t, e.ws, "status", "--porcelain"))
	}
}
