package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
)

// TestLastError: a failed start quotes the last error the daemon logged
// (its err, else its message) or what main printed before the log was open.
func TestLastError(t *testing.T) {
	tests := []struct {
		name, tail, want string
	}{
		{name: "err of an error line", tail: `{"level":"INFO","msg":"a"}` + "\n" + `{"level":"ERROR","msg":"listen","err":"no free port"}` + "\n" + `{"level":"INFO","msg":"b"}`, want: "no free port"},
		{name: "message of an error line", tail: `{"level":"ERROR","msg":"state dir refused"}`, want: "state dir refused"},
		{name: "main's line", tail: `{"level":"ERROR","msg":"older"}` + "\npatchd: open store: disk full", want: "open store: disk full"},
		{name: "no error", tail: `{"level":"INFO","msg":"a"}` + "\nsomething else", want: ""},
		{name: "nothing", tail: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastError(tt.tail); got != tt.want {
				t.Errorf("lastError(%q) = %q, want %q", tt.tail, got, tt.want)
			}
		})
	}
}

// TestTail: the last n lines of a file, of a large one too; nothing for a
// file that is not there.
func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	var b strings.Builder
	for i := range 20000 {
		b.WriteString("line " + strings.Repeat("x", i%7) + "\n")
	}
	b.WriteString("next to last\nlast\n")
	os.WriteFile(path, []byte(b.String()), 0o600)
	if got := tail(path, 2); got != "next to last\nlast" {
		t.Errorf("tail(2) = %q", got)
	}
	if got := tail(path, 20); strings.Count(got, "\n") != 19 {
		t.Errorf("tail(20) has %d lines", strings.Count(got, "\n")+1)
	}
	if got := tail(filepath.Join(dir, "missing"), 5); got != "" {
		t.Errorf("tail of a missing file = %q", got)
	}
}

// TestStartChildFails: when the process Start spawns exits before it is
// ready, Start says with which code and why, quoting its log, where its
// output went; the state dir is created private with a .gitignore.
func TestStartChildFails(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	cfg := &config.Config{StateDir: state, StartTimeout: 20 * time.Second}
	_, started, err := Start(t.Context(), cfg, "/bin/sh", []string{"-c", `echo "patchd: listen on port 5566: no free port" >&2; exit 4`})
	var se *StartError
	if !errors.As(err, &se) || started {
		t.Fatalf("Start = %v (started %v), want a StartError", err, started)
	}
	if se.ExitCode != 4 || se.Reason != "daemon exited with code 4 before it was ready: listen on port 5566: no free port" {
		t.Errorf("StartError = %+v, want exit code 4 and the reason main printed", se)
	}
	if !strings.Contains(se.LogTail, "patchd: listen on port 5566") {
		t.Errorf("LogTail = %q, want the child's output", se.LogTail)
	}
	if data, err := os.ReadFile(cfg.LogPath()); err != nil || !strings.Contains(string(data), "no free port") {
		t.Errorf("log %s = %q, %v; want the child's stderr in it", cfg.LogPath(), data, err)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v, want mode 0700", fi, err)
	}
	if data, _ := os.ReadFile(filepath.Join(state, ".gitignore")); string(data) != "*\n" {
		t.Errorf(".gitignore = %q, want %q", data, "*\n")
	}
}

// TestStartTimeout: a child that never says it is ready is killed at the
// start timeout, and Start says so, naming the timeout and its pid.
func TestStartTimeout(t *testing.T) {
	cfg := &config.Config{StateDir: filepath.Join(t.TempDir(), "state"), StartTimeout: 300 * time.Millisecond}
	begin := time.Now()
	_, _, err := Start(t.Context(), cfg, "/bin/sh", []string{"-c", "echo waiting; exec sleep 30"})
	var se *StartError
	if !errors.As(err, &se) || se.ExitCode != -1 || !strings.Contains(se.Reason, "was not ready within 300ms; killed it") {
		t.Fatalf("Start = %#v, want the timeout named and the child killed", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Start took %s with a 300ms timeout", d)
	}
}

// TestStartNoExecutable: a binary that cannot be run is an error naming it.
func TestStartNoExecutable(t *testing.T) {
	cfg := &config.Config{StateDir: filepath.Join(t.TempDir(), "state"), StartTimeout: 5 * time.Second}
	missing := filepath.Join(t.TempDir(), "patchd")
	if _, _, err := Start(t.Context(), cfg, missing, []string{"run"}); err == nil || !strings.Contains(err.Error(), "start "+missing) {
		t.Errorf("Start of a missing binary = %v, want an error naming it", err)
	}
}

// TestPrepareStateDirRefusesShared: a state dir others may write is
// refused, naming it, and nothing is written into it.
func TestPrepareStateDirRefusesShared(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	os.Mkdir(state, 0o700)
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	err := PrepareStateDir(state)
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("PrepareStateDir(a dir others may write) = %v, want an error naming %s", err, state)
	}
	if _, err := os.Stat(filepath.Join(state, ".gitignore")); err == nil {
		t.Errorf("PrepareStateDir wrote into a state dir it refused")
	}
}
