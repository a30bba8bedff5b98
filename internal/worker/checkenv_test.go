package worker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

// TestCheckEnvironment: a check gets a clean environment, the defaults plus
// what the config file allows, and a private TMPDIR; patchd's own variables
// and anything else of its environment never reach it (finding 5).
func TestCheckEnvironment(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATCHD_TOKEN", "secret-token")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	t.Setenv("GOPATH", "/go-path")
	t.Setenv("HOME", "/home/dev")
	t.Setenv("LC_ALL", "C.UTF-8")
	f := newFixture(t)
	f.checks = []config.Check{{Name: "env", Command: []string{exe, "__test-env"}, Timeout: 30 * time.Second,
		Env: map[string]string{"CI": "1"}, PassEnv: []string{"GOPATH", "NOT_SET_ANYWHERE"}}}
	f.store.Close()
	f.open()
	f.write("a.txt", "a\n", 0o644)
	f.submit("env", "a.txt", "a", "b")
	f.run()
	p := f.settle("env")
	if p.State != store.StateFailed {
		t.Fatalf("state %s, want failed (the check prints its environment and fails)", p.State)
	}
	_, out, _ := strings.Cut(p.Error, "Output:\n")
	vars := map[string]string{}
	var names []string
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		vars[k] = v
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"CI", "GOPATH", "HOME", "LC_ALL", "TMPDIR"}
	if os.Getenv("PATH") != "" {
		want = append(want, "PATH")
	}
	for _, k := range []string{"LANG", "LOGNAME", "TZ", "USER"} {
		if os.Getenv(k) != "" {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("the check's environment has %v, want exactly %v\n%s", names, want, out)
	}
	if vars["GOPATH"] != "/go-path" || vars["CI"] != "1" || vars["HOME"] != "/home/dev" {
		t.Errorf("GOPATH, CI, HOME = %q, %q, %q, want /go-path, 1, /home/dev", vars["GOPATH"], vars["CI"], vars["HOME"])
	}
	if strings.Contains(out, "secret") {
		t.Errorf("a secret of patchd's environment reached the check:\n%s", out)
	}
	if vars["TMPDIR"] != "$TMPDIR" {
		t.Errorf("TMPDIR = %q in the recorded output, want it named $TMPDIR, not by its path", vars["TMPDIR"])
	}
	data, _ := os.ReadFile(filepath.Join(f.ws, "check-tmpdir.txt"))
	tmp := string(data)
	if tmp == "" || tmp == os.TempDir() || !strings.HasPrefix(tmp, os.TempDir()) {
		t.Errorf("TMPDIR = %q, want a private directory under %s", tmp, os.TempDir())
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the check's TMPDIR %s is still there after the check (%v), want it removed", tmp, err)
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		writes []string
		want   string
	}{
		{[]string{"ab", "cd"}, "abcd"},
		{[]string{"abc", "defg"}, "…defg"},
		{[]string{"abcdefgh"}, "…efgh"},
		{[]string{"abcd", "\n"}, "…bcd"},
	}
	for _, tt := range tests {
		b := &tailBuffer{max: 4}
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tt.want {
			t.Errorf("writes %q: String() = %q, want %q", tt.writes, got, tt.want)
		}
	}
}
