package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nobody is the uid another local user's files get in these tests.
const nobody = 65534

// TestSquattedStateDir: a state dir, or a file in it patchd trusts, that
// another user owns or that group or others may write was used as is: a
// local user planted a config whose check then ran as root. Each is
// refused before anything starts, saying whose it is, what is wrong and
// how to fix it.
func TestSquattedStateDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	marker := filepath.Join(t.TempDir(), "check-ran")
	planted := `{"checks": [{"name": "planted", "command": "touch ` + marker + `"}]}`
	tests := []struct {
		name  string
		setup func(t *testing.T, state string) string // returns the path to name
		want  []string
	}{
		{"state dir owned by another user", func(t *testing.T, state string) string {
			mustDo(t, os.Chown(state, nobody, nobody))
			return state
		}, []string{"owned by uid 65534", "chown"}},
		{"state dir writable by others", func(t *testing.T, state string) string {
			mustDo(t, os.Chmod(state, 0o777))
			return state
		}, []string{"writable by group and others (mode 0777)", "chmod go-w"}},
		{"state dir writable by its group", func(t *testing.T, state string) string {
			mustDo(t, os.Chmod(state, 0o770))
			return state
		}, []string{"writable by its group (mode 0770)", "chmod go-w"}},
		{"planted config file", func(t *testing.T, state string) string {
			p := filepath.Join(state, "config.json")
			mustDo(t, os.WriteFile(p, []byte(planted), 0o644))
			mustDo(t, os.Chown(p, nobody, nobody))
			return p
		}, []string{"config file", "owned by uid 65534"}},
		{"config file writable by others", func(t *testing.T, state string) string {
			p := filepath.Join(state, "config.json")
			mustDo(t, os.WriteFile(p, []byte(planted), 0o666))
			mustDo(t, os.Chmod(p, 0o666))
			return p
		}, []string{"config file", "mode 0666", "chmod go-w"}},
		{"planted token", func(t *testing.T, state string) string {
			p := filepath.Join(state, "token")
			mustDo(t, os.WriteFile(p, []byte("attacker\n"), 0o600))
			mustDo(t, os.Chown(p, nobody, nobody))
			return p
		}, []string{"token", "owned by uid 65534"}},
		{"queue dir writable by others", func(t *testing.T, state string) string {
			p := filepath.Join(state, "queue")
			mustDo(t, os.Mkdir(p, 0o700))
			mustDo(t, os.Chmod(p, 0o777))
			return p
		}, []string{"mode 0777"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.state = filepath.Join(t.TempDir(), "state")
			mustDo(t, os.Mkdir(e.state, 0o700))
			bad := tt.setup(t, e.state)
			for _, cmd := range []string{"start", "run", "token"} {
				r := e.runBounded(cmd, "--port", "0")
				if r.code != 1 || !strings.Contains(r.stderr, bad) {
					t.Errorf("%s: %s, want exit 1 naming %s", cmd, r, bad)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: %s, want it to say %q", cmd, r, w)
					}
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the planted check ran")
			}
		})
	}

	// The name of the user, when there is one.
	t.Run("named owner", func(t *testing.T) {
		e := newEnv(t)
		e.state = filepath.Join(t.TempDir(), "state")
		mustDo(t, os.Mkdir(e.state, 0o700))
		mustDo(t, os.Chown(e.state, nobody, nobody))
		if r := e.run("token"); r.code != 1 || !strings.Contains(r.stderr, "uid 65534 (nobody)") {
			t.Skipf("uid 65534 has no name here, or: %s", r)
		}
	})
}

// TestSquattedConfigFile: an explicit --config that another user owns or
// may write is refused the same way, by every command.
func TestSquattedConfigFile(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	for _, tt := range []struct {
		name  string
		setup func(p string)
		want  string
	}{
		{"owned by another user", func(p string) { os.Chown(p, nobody, nobody) }, "owned by uid 65534"},
		{"writable by others", func(p string) { os.Chmod(p, 0o646) }, "writable by others (mode 0646)"},
	} {
		e := newEnv(t)
		cfg := filepath.Join(t.TempDir(), "patchd.json")
		mustDo(t, os.WriteFile(cfg, []byte(`{"log-level": "debug"}`), 0o644))
		tt.setup(cfg)
		for _, cmd := range []string{"start", "status", "token"} {
			r := e.run(cmd, "--config", cfg, "--port", "0")
			if r.code != 1 || !strings.Contains(r.stderr, "config file "+cfg) || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%s with a config file %s: %s, want exit 1 naming it and %q", cmd, tt.name, r, tt.want)
			}
		}
	}
}

// TestOwnStateDirModes: the state dirs patchd makes are 0700, and one of
// the user's own that others may read but not write (0755) is fine.
func TestOwnStateDirModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	e.waitRunning(10 * time.Second)
	for _, dir := range []string{"", "logs", "queue"} {
		fi, err := os.Stat(filepath.Join(e.stateDir(), dir))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("state dir %q: %v, %v, want mode 0700", dir, fi.Mode(), err)
		}
	}
	e.run("stop")

	e2 := newEnv(t)
	e2.state = filepath.Join(t.TempDir(), "state")
	mustDo(t, os.Mkdir(e2.state, 0o755))
	mustDo(t, os.Chmod(e2.state, 0o755))
	if _, r := e2.start(); r.code != 0 {
		t.Fatalf("start with a 0755 state dir of our own: %s", r)
	}
}

// runBounded is run for a command that must exit by itself (`run` refused
// before it starts): it is killed, and the test fails, if it does not.
func (e *tenv) runBounded(args ...string) result {
	e.t.Helper()
	cmd := e.command(args...)
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill() })
	code := exitCode(e.t, cmd, 15*time.Second)
	return result{out.String(), errb.String(), code}
}
