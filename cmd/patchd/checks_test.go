package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withChecks is one test's workspace with a config file defining checks.
func withChecks(t *testing.T, config string) *tenv {
	t.Helper()
	e := newEnv(t)
	if err := os.MkdirAll(e.stateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.stateDir(), "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCheckProcess: a check the real daemon runs gets a clean environment
// (none of patchd's PATCHD_* variables, none of its other variables but the
// defaults and those the config passes) and the default disposition of
// SIGPIPE, which patchd itself ignores (finding 5).
func TestCheckProcess(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "check.out")
	cfg, _ := json.Marshal(map[string]any{
		"checks": []map[string]any{{
			"name":     "env",
			"command":  []string{"sh", "-c", `env > "$OUT"; grep SigIgn /proc/self/status >> "$OUT"`},
			"env":      map[string]string{"OUT": out},
			"pass_env": []string{"PASSED_ON"},
		}},
	})
	e := withChecks(t, string(cfg))
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("a\n"), 0o644)
	cmd := e.command("start", "--port", "0")
	cmd.Env = append(cmd.Env, "PATCHD_LOG_LEVEL=debug", "SECRET_OF_PATCHD=s3cret", "PASSED_ON=yes")
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	if r := e.sendBlock(`{"id": "E1", "role": "fix", "target_file": "a.txt", "patch": {"pattern": "a", "replacement": "b"}}`); r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	var got string
	waitFor(t, 20*time.Second, "the check to run", func() bool {
		data, _ := os.ReadFile(out)
		got = string(data)
		return strings.Contains(got, "SigIgn")
	})
	for _, absent := range []string{"PATCHD_", "SECRET_OF_PATCHD", "s3cret", "GORACE"} {
		if strings.Contains(got, absent) {
			t.Errorf("the check's environment holds %s:\n%s", absent, got)
		}
	}
	for _, present := range []string{"PASSED_ON=yes", "OUT=" + out, "TMPDIR=", "PATH="} {
		if !strings.Contains(got, present) {
			t.Errorf("the check's environment lacks %s:\n%s", present, got)
		}
	}
	_, ign, _ := strings.Cut(got, "SigIgn:")
	mask, err := strconv.ParseUint(strings.TrimSpace(ign), 16, 64)
	if err != nil {
		t.Fatalf("SigIgn %q: %v", ign, err)
	}
	if mask&(1<<12) != 0 {
		t.Errorf("the check runs with SIGPIPE ignored (SigIgn %s): a writer to a closed pipe would not end", strings.TrimSpace(ign))
	}
}

// TestServiceEnvAndPath: `patchd service` puts the PATH in effect (or
// --path) and each --env into the definition, so that checks run under a
// supervisor find the toolchain (under launchd every `go` check failed with
// "go: not found"); a bad --env is a usage error naming it (finding 5).
func TestServiceEnvAndPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	service := func(path string, args ...string) result {
		cmd := e.command(append([]string{"service"}, args...)...)
		cmd.Env = append(cmd.Env, "PATH="+path)
		return runCmd(t, cmd)
	}
	shellPath := "/opt/go/bin:" + os.Getenv("PATH")
	r := service(shellPath, "systemd", "--env", "GOFLAGS=-mod=mod", "--env", "CI=1")
	for _, want := range []string{"Environment=PATH=" + shellPath + "\n", "Environment=GOFLAGS=-mod=mod\n", "Environment=CI=1\n"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("service systemd: %s\nwant the unit to hold %q", r, want)
		}
	}
	r = service(shellPath, "launchd", "--path", "/usr/local/go/bin:/usr/bin:/bin")
	if r.code != 0 || !strings.Contains(r.stdout, "<key>PATH</key>\n\t\t<string>/usr/local/go/bin:/usr/bin:/bin</string>") {
		t.Errorf("service launchd --path: %s\nwant the given PATH in EnvironmentVariables", r)
	}
	r = service(shellPath, "pm2", "--path", "none")
	if r.code != 0 || strings.Contains(r.stdout, "PATH") {
		t.Errorf("service pm2 --path none: %s\nwant no PATH", r)
	}
	if r := service(shellPath, "pm2", "--env", "NOEQUALS"); r.code != 2 || !strings.Contains(r.stderr, "-env") {
		t.Errorf("service pm2 --env NOEQUALS: %s, want exit 2 naming --env", r)
	}
	if r := service(".:"+shellPath, "pm2"); r.code != 1 || !strings.Contains(r.stderr, `entry "." is not absolute`) {
		t.Errorf("service pm2 with . in PATH: %s, want exit 1 naming the relative entry", r)
	}
}

// TestCheckSandboxProcess: with --check-sandbox the real daemon re-executes
// itself to confine each check: a check writing outside the workspace, or
// into the state dir inside it, fails the patch and writes nothing there,
// while a check writing in the workspace passes (finding 5).
func TestCheckSandboxProcess(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/kernel/security"); err != nil {
		t.Skip("not Linux")
	}
	outside := filepath.Join(t.TempDir(), "planted")
	cfg, _ := json.Marshal(map[string]any{
		"checks": []map[string]any{
			{"name": "escape", "command": "echo x > " + outside, "paths": []string{"a.txt"}},
			{"name": "token", "command": "echo evil > .patchd/token", "paths": []string{"b.txt"}},
			{"name": "build", "command": "mkdir -p src/out && echo ok > src/out/built", "paths": []string{"c.txt"}},
		},
	})
	e := withChecks(t, string(cfg))
	os.MkdirAll(filepath.Join(e.ws, "src"), 0o755)
	for _, name := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(e.ws, name+".txt"), []byte("a\n"), 0o644)
	}
	if _, r := e.start("--check-sandbox"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	token := e.token()
	for _, name := range []string{"a", "b", "c"} {
		if r := e.sendBlock(`{"id": "` + name + `", "role": "fix", "target_file": "` + name + `.txt", "patch": {"pattern": "a", "replacement": "b"}}`); r.code != 0 {
			t.Fatalf("send: %s", r)
		}
	}
	state := func(id string) string {
		r := e.run("patches", "show", id)
		return r.stdout + r.stderr
	}
	for id, want := range map[string]string{"a": "failed", "b": "failed", "c": "applied"} {
		waitFor(t, 20*time.Second, "patch "+id+" to settle", func() bool {
			s := state(id)
			return strings.Contains(s, "failed") || strings.Contains(s, "applied")
		})
		if s := state(id); !strings.Contains(s, want) {
			t.Errorf("patch %s: %s\nwant %s", id, s, want)
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("a confined check wrote %s outside the workspace", outside)
	}
	if got := e.token(); got != token {
		t.Errorf("a confined check replaced the token: %q", got)
	}
	if data, _ := os.ReadFile(filepath.Join(e.ws, "src", "out", "built")); string(data) != "ok\n" {
		t.Errorf("src/out/built = %q, want written by the confined build", data)
	}
}
