package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests attack patchd's own files (the state dir, the token, the
// config file and its checks, the summaries) through the workspace, under
// every spelling a patch or a workspace can give them.

// createBlock is a patch creating file with content.
func createBlock(id, file, content string) string {
	return fmt.Sprintf(`{"id":%q,"role":"attack","target_file":%q,"patch":{"search":"","replace":%q}}`, id, file, content)
}

// replaceBlock is a patch replacing every character of an existing file.
func replaceBlock(id, file, content string) string {
	return fmt.Sprintf(`{"id":%q,"role":"attack","target_file":%q,"patch":{"pattern":"(?s).+","replacement":%q}}`, id, file, content)
}

// sendBlock submits a block with `patchd send -`.
func (e *tenv) sendBlock(block string, args ...string) result {
	e.t.Helper()
	cmd := e.command(append([]string{"send", "-"}, args...)...)
	cmd.Stdin = strings.NewReader(block)
	return runCmd(e.t, cmd)
}

// refusedOrFailed checks that a patch never applied: refused at the door
// (send exits 1 with the reason) or failed by the worker with the reason.
func (e *tenv) refusedOrFailed(c *client, id, block, reason string) {
	e.t.Helper()
	r := e.sendBlock(block)
	if r.code != 0 {
		if r.code != 1 || !strings.Contains(r.stderr, reason) {
			e.t.Errorf("patch %s: %s, want exit 1 with %q", id, r, reason)
		}
		return
	}
	var p patchState
	waitFor(e.t, 10*time.Second, "patch "+id+" to finish", func() bool {
		p, _ = c.patch(e.t, id)
		return p.State == "applied" || p.State == "failed"
	})
	if p.State != "failed" || !strings.Contains(p.Error, reason) {
		e.t.Errorf("patch %s: state %s, error %q, want failed with %q", id, p.State, p.Error, reason)
	}
}

// TestStateDirProtectedUnderAnyName is the reproduction of a workspace
// given through a symbolic link (--workspace base/link, link -> real) with
// the state dir named by its real path: patches wrote .patchd/config.json
// with a check and replaced .patchd/token, and after a restart the check
// ran and the attacker's token was accepted.
func TestStateDirProtectedUnderAnyName(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	real := filepath.Join(base, "real")
	link := filepath.Join(base, "link")
	mustDo(t, os.Mkdir(real, 0o755))
	mustDo(t, os.Symlink(real, link))
	mustDo(t, os.WriteFile(filepath.Join(real, "a.txt"), []byte("seed\n"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(real, "b.txt"), []byte("seed\n"), 0o644))
	e := newEnv(t)
	e.ws, e.state = link, filepath.Join(real, ".patchd")
	marker := filepath.Join(base, "check-ran")

	st, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	token := e.token()
	c := e.client(e.waitRunning(10 * time.Second).Address)
	planted := fmt.Sprintf(`{"checks": [{"name": "planted", "command": "touch %s"}]}`, marker)
	e.refusedOrFailed(c, "C1", createBlock("C1", ".patchd/config.json", planted), `".patchd/config.json"`)
	e.refusedOrFailed(c, "T1", replaceBlock("T1", ".patchd/token", "attacker\n"), `".patchd/token"`)
	e.refusedOrFailed(c, "T2", replaceBlock("T2", "../real/.patchd/token", "attacker\n"), `"../real/.patchd/token"`)

	// A bind mount of the state dir inside the workspace is one more name
	// for it, which only its device and inode give away.
	alias := filepath.Join(real, "alias")
	mustDo(t, os.Mkdir(alias, 0o755))
	if out, err := exec.Command("mount", "--bind", e.state, alias).CombinedOutput(); err != nil {
		t.Logf("no bind mount (%v: %s); the alias case is not tried", err, out)
	} else {
		t.Cleanup(func() { exec.Command("umount", "-l", alias).Run() })
		e.refusedOrFailed(c, "T3", replaceBlock("T3", "alias/token", "attacker\n"), "patchd's state directory")
		e.refusedOrFailed(c, "C2", createBlock("C2", "alias/config.json", planted), "patchd's state directory")
	}

	// Everything the worker had is done: a harmless patch after them applied.
	if r := e.sendBlock(string(seedBlock("S1", "a.txt"))); r.code != 0 {
		t.Fatalf("send S1: %s", r)
	}
	waitFor(t, 10*time.Second, "S1 to apply", func() bool {
		p, _ := c.patch(t, "S1")
		return p.State == "applied"
	})
	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop of pid %d: %s", st, r)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start again: %s", r)
	}
	c = e.client(e.waitRunning(10 * time.Second).Address)
	if r := e.sendBlock(string(seedBlock("S2", "b.txt"))); r.code != 0 {
		t.Fatalf("send S2: %s", r)
	}
	waitFor(t, 10*time.Second, "S2 to apply", func() bool {
		p, _ := c.patch(t, "S2")
		return p.State == "applied"
	})
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the planted check ran (%s exists)", marker)
	}
	if got := e.token(); got != token {
		t.Errorf("token after the attack = %q, want the daemon's own %q", got, token)
	}
	if _, err := os.Stat(filepath.Join(e.state, "config.json")); err == nil {
		t.Errorf("a config file was planted in the state dir")
	}
}

// TestStateDirAtOrAboveWorkspace: a state dir that is the workspace, or
// contains it, under any spelling, is a usage error naming both paths.
func TestStateDirAtOrAboveWorkspace(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	mustDo(t, os.Mkdir(ws, 0o755))
	mustDo(t, os.Symlink(ws, filepath.Join(base, "wslink")))
	for _, tt := range []struct{ name, state string }{
		{"the workspace", ws},
		{"the workspace through a link", filepath.Join(base, "wslink")},
		{"the workspace's parent", base},
		{"the workspace's parent, spelled from inside", filepath.Join(ws, "..")},
	} {
		e := newEnv(t)
		e.ws, e.state = ws, tt.state
		for _, cmd := range []string{"start", "token"} {
			r := e.run(cmd, "--port", "0")
			if r.code != 2 || !strings.Contains(r.stderr, "--state-dir") || !strings.Contains(r.stderr, ws) {
				t.Errorf("%s with --state-dir %s (%s): %s, want exit 2 naming --state-dir and the workspace %s", cmd, tt.state, tt.name, r, ws)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(ws, "patchd.lock")); err == nil {
		t.Errorf("a refused start still made a state file in the workspace")
	}
}

// TestConfigAndSummariesProtected: a config file or a summaries dir inside
// the workspace is patchd's, not the patches': refused by name, through
// links and by identity (a hard link).
func TestConfigAndSummariesProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	marker := filepath.Join(t.TempDir(), "check-ran")
	cfg := filepath.Join(e.ws, "ci", "patchd.json")
	mustDo(t, os.MkdirAll(filepath.Dir(cfg), 0o755))
	mustDo(t, os.WriteFile(cfg, []byte(`{"log-level": "info"}`), 0o644))
	mustDo(t, os.Symlink("ci", filepath.Join(e.ws, "cilink")))
	mustDo(t, os.Link(cfg, filepath.Join(e.ws, "copy.json")))
	if _, r := e.start("--config", cfg, "--summaries-dir", filepath.Join(e.ws, "docs", "patches")); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	c := e.client(e.waitRunning(10 * time.Second).Address)
	planted := fmt.Sprintf(`{"checks": [{"name": "planted", "command": "touch %s"}]}`, marker)
	e.refusedOrFailed(c, "C1", replaceBlock("C1", "ci/patchd.json", planted), `"ci/patchd.json"`)
	e.refusedOrFailed(c, "C2", replaceBlock("C2", "cilink/patchd.json", planted), "patchd's config file")
	e.refusedOrFailed(c, "C3", replaceBlock("C3", "copy.json", planted), "patchd's config file")
	e.refusedOrFailed(c, "S1", createBlock("S1", "docs/patches/S0.md", "forged summary\n"), `"docs/patches/S0.md"`)
	if data, _ := os.ReadFile(cfg); string(data) != `{"log-level": "info"}` {
		t.Errorf("config file after the attack = %q", data)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRootWorkspace: the file system's root as the workspace (where a
// patch could write anywhere) is refused unless --allow-root-workspace,
// PATCHD_ALLOW_ROOT_WORKSPACE or the config key says it is meant.
func TestRootWorkspace(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	mustDo(t, os.Symlink("/", filepath.Join(base, "rootlink")))
	state := filepath.Join(base, "state")
	run := func(env []string, args ...string) result {
		cmd := exec.Command(patchdBin, append([]string{"status", "--state-dir", state}, args...)...)
		cmd.Env = append(cleanEnv(), env...)
		return runCmd(t, cmd)
	}
	for _, ws := range []string{"/", filepath.Join(base, "rootlink"), "/tmp/.."} {
		r := run(nil, "--workspace", ws)
		if r.code != 2 || !strings.Contains(r.stderr, "--workspace "+filepath.Clean(ws)) || !strings.Contains(r.stderr, "--allow-root-workspace") {
			t.Errorf("status --workspace %s: %s, want exit 2 naming it and --allow-root-workspace", ws, r)
		}
	}
	cfg := filepath.Join(base, "config.json")
	mustDo(t, os.WriteFile(cfg, []byte(`{"allow-root-workspace": true}`), 0o600))
	for _, tt := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--allow-root-workspace"}},
		{[]string{"PATCHD_ALLOW_ROOT_WORKSPACE=true"}, nil},
		{nil, []string{"--config", cfg}},
	} {
		if r := run(tt.env, append([]string{"--workspace", "/"}, tt.args...)...); r.code != 3 {
			t.Errorf("status --workspace / with %v %v: %s, want exit 3 (accepted, not running)", tt.env, tt.args, r)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("status made the state dir %s", state)
	}
	// A service definition carries the permission to the daemon it runs.
	cmd := exec.Command(patchdBin, "service", "systemd", "--workspace", "/", "--allow-root-workspace", "--state-dir", state)
	cmd.Env = cleanEnv()
	if r := runCmd(t, cmd); r.code != 0 || !strings.Contains(r.stdout, "--allow-root-workspace") {
		t.Errorf("service systemd --workspace / --allow-root-workspace: %s, want the flag in the unit", r)
	}
}
