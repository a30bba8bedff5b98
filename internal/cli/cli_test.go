package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/patchd/patchd/internal/version"
)

// These tests run the commands in process, through Env, as main does:
// what a user sees on stdout and stderr, and the exit code main would use.

// syncBuffer is a bytes.Buffer a daemon goroutine writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is one command's outcome as main would print it: stderr includes
// main's "patchd: <error>" line.
type result struct {
	stdout, stderr string
	code           int
}

// vars is the environment a test's commands see (nothing from the caller's).
type vars map[string]string

func (v vars) get(k string) string { return v[k] }

// run runs a command in process with the environment vars and stdin.
func run(ctx context.Context, v vars, stdin string, args ...string) result {
	var out, errb syncBuffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: v.get, Exe: "/opt/patchd/bin/patchd"}
	err := Run(ctx, env, args)
	code := ExitOK
	if err != nil {
		code = ExitFailed
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		if ee == nil || ee.Err != nil {
			errb.Write([]byte("patchd: " + err.Error() + "\n"))
		}
	}
	return result{out.String(), errb.String(), code}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// TestVersion: `patchd version` prints the version, the Go release and the
// platform; a flag it does not know is a usage error naming it.
func TestVersion(t *testing.T) {
	r := run(t.Context(), nil, "", "version")
	want := "patchd " + version.Version + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if r.code != ExitOK || r.stdout != want {
		t.Errorf("version: %s, want exit 0 and %q", r, want)
	}
	if r := run(t.Context(), nil, "", "version", "--verbose"); r.code != ExitUsage || !strings.Contains(r.stderr, "-verbose") {
		t.Errorf("version --verbose: %s, want exit 2 naming the flag", r)
	}
}

// TestHelp: no command prints the usage and exits 2; help exits 0; both
// list every command; an unknown command is named.
func TestHelp(t *testing.T) {
	none := run(t.Context(), nil, "")
	help := run(t.Context(), nil, "", "help")
	if none.code != ExitUsage || help.code != ExitOK || none.stdout != help.stdout {
		t.Errorf("no command: %s; help: %s; want exits 2 and 0, the same usage", none, help)
	}
	for _, name := range commandNames() {
		if !regexp.MustCompile(`(?m)^  ` + name + ` +\S`).MatchString(help.stdout) {
			t.Errorf("help does not list %q: %s", name, help.stdout)
		}
	}
	if r := run(t.Context(), nil, "", "frobnicate"); r.code != ExitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("frobnicate: %s, want exit 2 naming it", r)
	}
	if r := run(t.Context(), nil, "", "status", "-h"); r.code != ExitOK || !strings.Contains(r.stdout, "--json") || !strings.Contains(r.stdout, "--workspace") {
		t.Errorf("status -h: %s, want exit 0 and the flags, its own and the common ones", r)
	}
}

// TestToken: on a fresh state dir `patchd token` creates the token (0600,
// in the state dir), prints it alone, and prints the same one next time.
func TestToken(t *testing.T) {
	ws := t.TempDir()
	r := run(t.Context(), nil, "", "token", "--workspace", ws)
	tok := strings.TrimSpace(r.stdout)
	if r.code != ExitOK || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) || r.stderr != "" {
		t.Fatalf("token: %s, want exit 0 and 64 hex digits alone", r)
	}
	path := filepath.Join(ws, ".patchd", "token")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v %v, want mode 0600", fi, err)
	}
	if again := run(t.Context(), nil, "", "token", "--workspace", ws); again.stdout != r.stdout {
		t.Errorf("token again: %s, want the same %q", again, tok)
	}
	if r := run(t.Context(), vars{"PATCHD_WORKSPACE": ws}, "", "token"); r.stdout != tok+"\n" {
		t.Errorf("token with PATCHD_WORKSPACE: %s, want %q", r, tok)
	}
	if r := run(t.Context(), nil, "", "token", "--workspace", ws, "extra"); r.code != ExitUsage || !strings.Contains(r.stderr, `unexpected argument "extra"`) {
		t.Errorf("token extra: %s, want exit 2 naming the argument", r)
	}
}

// TestNotRunning: with no daemon, status and health exit 3 saying which
// lock nobody holds (as JSON with --json), the clients exit 3 telling how
// to start it, stop exits 0, and no command creates a daemon.
func TestNotRunning(t *testing.T) {
	ws := t.TempDir()
	state := filepath.Join(ws, ".patchd")
	lock := filepath.Join(state, "patchd.lock")

	r := run(t.Context(), nil, "", "status", "--json", "--workspace", ws)
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != ExitNotRunning {
		t.Fatalf("status --json: %s (%v), want exit 3 and JSON", r, err)
	}
	want := map[string]any{"running": false, "reason": "no instance holds " + lock, "state_dir": state, "workspace": ws}
	if len(st) != len(want) {
		t.Errorf("status --json = %v, want %v", st, want)
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("status --json: %s = %v, want %v", k, st[k], v)
		}
	}
	if r := run(t.Context(), nil, "", "status", "--workspace", ws); r.code != ExitNotRunning || r.stdout != "patchd not running (no instance holds "+lock+")\n" {
		t.Errorf("status: %s, want exit 3 naming the lock", r)
	}
	if r := run(t.Context(), nil, "", "health", "--json", "--workspace", ws); r.code != ExitNotRunning || !strings.Contains(r.stdout, `"running":false`) {
		t.Errorf("health --json: %s, want exit 3 and running false", r)
	}
	if r := run(t.Context(), nil, "", "stop", "--workspace", ws); r.code != ExitOK || r.stdout != "patchd was not running\n" {
		t.Errorf("stop: %s, want exit 0 saying it was not running", r)
	}
	patch := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(patch, []byte(`{}`), 0o600)
	for _, args := range [][]string{{"send", patch}, {"patches", "list"}, {"patches", "show", "P1"}, {"patches", "revert", "P1"}} {
		r := run(t.Context(), nil, "", append(args, "--workspace", ws)...)
		if r.code != ExitNotRunning || !strings.Contains(r.stderr, "patchd is not running for "+state+" (start it with 'patchd start')") {
			t.Errorf("%v: %s, want exit 3 saying how to start it", args, r)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "patchd.json")); err == nil {
		t.Errorf("a command of a client wrote the daemon's state file")
	}
}

// TestUsageErrors: a mistyped command line exits 2 and names what is wrong.
func TestUsageErrors(t *testing.T) {
	ws := t.TempDir()
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"status", "--port", "http"}, "-port"},
		{[]string{"status", "--bogus"}, "-bogus"},
		{[]string{"status", "--json=maybe"}, "-json"},
		{[]string{"status", "stray"}, `status: unexpected argument "stray"`},
		{[]string{"start", "--workspace", ws, "now"}, `start: unexpected argument "now"`},
		{[]string{"run", "--drain-timeout", "soon"}, "-drain-timeout"},
		{[]string{"send"}, "send: want one FILE (or - for standard input), got 0 arguments"},
		{[]string{"send", "a.json", "b.json"}, "got 2 arguments"},
		{[]string{"patches"}, "patches: want list, show ID, revert ID, drop ID, prune or watch"},
		{[]string{"patches", "lsit"}, `unknown subcommand "lsit" (did you mean list?)`},
		{[]string{"patches", "show"}, `not "show"`},
		{[]string{"patches", "list", "extra"}, `not "list extra"`},
		{[]string{"patches", "list", "--limit", "many"}, "-limit"},
		{[]string{"service"}, "service: want one of pm2, systemd, launchd"},
		{[]string{"service", "upstart"}, `unknown supervisor "upstart"`},
		{[]string{"service", "pm2", "--env", "NOEQUALS"}, `want KEY=VALUE, not "NOEQUALS"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(append([]string{}, tt.args...), "--workspace", ws)
			r := run(t.Context(), nil, "", args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%v: %s, want exit 2 and %q", args, r, tt.want)
			}
		})
	}
}
