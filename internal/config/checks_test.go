package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadFile(t *testing.T, file string) (*Config, error) {
	t.Helper()
	ws := t.TempDir()
	path := filepath.Join(ws, "patchd.json")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	return load(t, []string{"--workspace", ws, "--config", path}, nil)
}

// TestCheckEnv: the environment a check gets is what the config file
// allows, globally ("check-env", "check-pass-env") and per check ("env",
// "pass_env"); a check's own values win.
func TestCheckEnv(t *testing.T) {
	c, err := loadFile(t, `{
		"check-env": {"GOFLAGS": "-mod=mod", "CI": "1"},
		"check-pass-env": ["GOPATH"],
		"checks": [
			{"name": "a", "command": "true"},
			{"name": "b", "command": "true", "env": {"CI": "0", "NODE_ENV": "test"}, "pass_env": ["SSH_AUTH_SOCK", "GOPATH"]}
		]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Checks[0].Env, map[string]string{"GOFLAGS": "-mod=mod", "CI": "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("checks[0].Env = %v, want %v", got, want)
	}
	if got, want := c.Checks[0].PassEnv, []string{"GOPATH"}; !reflect.DeepEqual(got, want) {
		t.Errorf("checks[0].PassEnv = %v, want %v", got, want)
	}
	if got, want := c.Checks[1].Env, map[string]string{"GOFLAGS": "-mod=mod", "CI": "0", "NODE_ENV": "test"}; !reflect.DeepEqual(got, want) {
		t.Errorf("checks[1].Env = %v, want %v", got, want)
	}
	if got, want := c.Checks[1].PassEnv, []string{"GOPATH", "SSH_AUTH_SOCK"}; !reflect.DeepEqual(got, want) {
		t.Errorf("checks[1].PassEnv = %v, want %v", got, want)
	}
}

// TestCheckEnvRefused: patchd's own variables never reach a check, even
// when the file asks, and every refusal names the field.
func TestCheckEnvRefused(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"patchd var passed", `{"checks": [{"command": "true", "pass_env": ["PATCHD_TOKEN"]}]}`, `checks[0]: pass_env: PATCHD_TOKEN: patchd's own variables never reach a check`},
		{"patchd var set", `{"check-env": {"PATCHD_STATE_DIR": "/x"}, "checks": []}`, `check-env: PATCHD_STATE_DIR: patchd's own variables never reach a check`},
		{"tmpdir", `{"checks": [{"command": "true", "env": {"TMPDIR": "/tmp"}}]}`, `checks[0]: env: TMPDIR: set by patchd`},
		{"bad name", `{"check-pass-env": ["A=B"]}`, `check-pass-env: "A=B": not a variable name`},
		{"nul value", `{"checks": [{"command": "true", "env": {"A": "x\u0000y"}}]}`, `checks[0]: env: A: value holds a NUL byte`},
		{"not an object", `{"check-env": ["A"]}`, `check-env`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadFile(t, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestCheckSandbox: "sandbox" confines one check, --check-sandbox every
// one; "writable" takes absolute directories only.
func TestCheckSandbox(t *testing.T) {
	ws := t.TempDir()
	path := filepath.Join(ws, "patchd.json")
	file := `{"checks": [{"name": "a", "command": "true", "sandbox": true, "writable": ["/home/dev/.cache/go-build/"]}, {"name": "b", "command": "true"}]}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []bool
	}{
		{nil, []bool{true, false}},
		{[]string{"--check-sandbox"}, []bool{true, true}},
	} {
		c, err := load(t, append([]string{"--workspace", ws, "--config", path}, tt.args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := []bool{c.Checks[0].Sandbox, c.Checks[1].Sandbox}; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: sandbox = %v, want %v", tt.args, got, tt.want)
		}
		if got := c.Checks[0].Writable; !reflect.DeepEqual(got, []string{"/home/dev/.cache/go-build"}) {
			t.Errorf("writable = %q", got)
		}
	}
	if _, err := loadFile(t, `{"checks": [{"command": "true", "writable": ["cache"]}]}`); err == nil || !strings.Contains(err.Error(), `checks[0]: writable: "cache" is not an absolute path`) {
		t.Errorf("relative writable: %v, want refused naming it", err)
	}
}
