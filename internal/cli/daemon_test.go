package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunInProcess: `patchd run` in this process, driven by the other
// commands as a user would: status (text and JSON) and health see it, a
// second `run --if-running exit` exits 5, send applies a patch that
// patches show and list report, revert undoes it, and the end of its
// context (a signal, in main) ends run with exit 0, after which status
// exits 3 again.
func TestRunInProcess(t *testing.T) {
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "a.txt"), []byte("seed\n"), 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	console := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		env := &Env{Stdin: strings.NewReader(""), Stdout: console, Stderr: console, Getenv: vars{}.get, Exe: os.Args[0]}
		done <- Run(ctx, env, []string{"run", "--workspace", ws, "--port", "0"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("run did not return after its context ended; its output:\n%s", console)
		}
	})

	var st struct {
		Running   bool   `json:"running"`
		PID       int    `json:"pid"`
		Address   string `json:"address"`
		Workspace string `json:"workspace"`
		StateDir  string `json:"state_dir"`
	}
	waitFor(t, 20*time.Second, "the daemon to answer status", func() bool {
		r := run(ctx, nil, "", "status", "--json", "--workspace", ws)
		return r.code == ExitOK && json.Unmarshal([]byte(r.stdout), &st) == nil
	})
	if !st.Running || st.PID != os.Getpid() || !strings.HasPrefix(st.Address, "127.0.0.1:") || st.Workspace != ws || st.StateDir != filepath.Join(ws, ".patchd") {
		t.Errorf("status --json = %+v, want running, this pid, 127.0.0.1, the workspace and its state dir", st)
	}
	r := run(ctx, nil, "", "status", "--workspace", ws)
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, fmt.Sprintf("patchd running: pid=%d address=%s ", st.PID, st.Address)) || !strings.Contains(r.stdout, "workspace: "+ws+"\n") {
		t.Errorf("status: %s", r)
	}
	if r := run(ctx, nil, "", "health", "--workspace", ws); r.code != ExitOK || !strings.HasPrefix(r.stdout, fmt.Sprintf("patchd healthy: pid=%d address=%s", st.PID, st.Address)) {
		t.Errorf("health: %s", r)
	}
	if r := run(ctx, nil, "", "run", "--workspace", ws, "--port", "0", "--if-running", "exit"); r.code != ExitAlreadyRunning || !strings.Contains(r.stderr, "already running") {
		t.Errorf("a second run --if-running exit: %s, want exit 5 saying it is already running", r)
	}

	patch := `{"id": "P1", "role": "fix", "target_file": "a.txt", "patch": {"search": "seed", "replace": "grown"}}`
	if r := run(ctx, nil, patch, "send", "-", "--dry-run", "--workspace", ws); r.code != ExitOK || !strings.HasPrefix(r.stdout, "would apply: id=P1 files=a.txt\n") || !strings.Contains(r.stdout, "+grown") {
		t.Errorf("send --dry-run: %s, want the diff", r)
	}
	if r := run(ctx, nil, patch, "send", "-", "--workspace", ws); r.code != ExitOK || !strings.HasPrefix(r.stdout, "accepted: id=P1 state=") {
		t.Fatalf("send: %s", r)
	}
	waitFor(t, 20*time.Second, "P1 to apply", func() bool {
		r := run(ctx, nil, "", "patches", "show", "P1", "--workspace", ws)
		return strings.Contains(r.stdout, "state: applied\n")
	})
	if data, _ := os.ReadFile(filepath.Join(ws, "a.txt")); string(data) != "grown\n" {
		t.Errorf("a.txt = %q after P1, want %q", data, "grown\n")
	}
	if r := run(ctx, nil, patch, "send", "-", "--workspace", ws); r.code != ExitOK || !strings.Contains(r.stdout, "(already received)") {
		t.Errorf("send again: %s, want it accepted as a duplicate", r)
	}
	if r := run(ctx, nil, "", "patches", "list", "--workspace", ws); r.code != ExitOK || !strings.Contains(r.stdout, "P1") || !strings.Contains(r.stdout, "applied") {
		t.Errorf("patches list: %s, want P1 applied", r)
	}
	if r := run(ctx, nil, "", "patches", "show", "NOPE", "--workspace", ws); r.code != ExitFailed || !strings.Contains(r.stderr, "404") {
		t.Errorf("patches show NOPE: %s, want exit 1 and the 404", r)
	}
	if r := run(ctx, nil, "", "patches", "revert", "P1", "--workspace", ws); r.code != ExitOK || r.stdout != "reverted: id=P1\n" {
		t.Errorf("patches revert P1: %s", r)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "a.txt")); string(data) != "seed\n" {
		t.Errorf("a.txt = %q after the revert, want %q", data, "seed\n")
	}

	// What SIGTERM does in main. (`patchd stop` waits for the process to
	// exit, which this one does not: the process tests cover it.)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after its context ended = %v, want nil (exit 0)", err)
		}
		done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not return after its context ended; its output:\n%s", console)
	}
	if r := run(t.Context(), nil, "", "status", "--workspace", ws); r.code != ExitNotRunning {
		t.Errorf("status after the end: %s, want exit 3", r)
	}
	if !strings.Contains(console.String(), "level=INFO") {
		t.Errorf("run logged nothing on its console: %q", console)
	}
}
