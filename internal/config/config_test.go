package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Load(func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	ws := t.TempDir()
	c, err := load(t, []string{"--workspace", ws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "127.0.0.1" || c.Port != 5555 || !reflect.DeepEqual(c.FallbackPorts, []int{5566}) {
		t.Errorf("host, port, fallbacks = %s, %d, %v, want 127.0.0.1, 5555, [5566]", c.Host, c.Port, c.FallbackPorts)
	}
	if want := filepath.Join(ws, ".patchd"); c.StateDir != want {
		t.Errorf("StateDir = %s, want %s", c.StateDir, want)
	}
	if c.IfRunning != "standby" || c.NoAuth || c.MaxBodyBytes != 1<<20 || c.DrainTimeout != 10*time.Second {
		t.Errorf("IfRunning, NoAuth, MaxBodyBytes, DrainTimeout = %s, %v, %d, %v", c.IfRunning, c.NoAuth, c.MaxBodyBytes, c.DrainTimeout)
	}
}

// TestPrecedence checks file < env < flags for each kind of value.
func TestPrecedence(t *testing.T) {
	ws := t.TempDir()
	sd := filepath.Join(ws, ".patchd")
	if err := os.MkdirAll(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	file := `{"port": 7001, "host": "127.0.0.2", "fallback-port": [7100, 7101], "log-level": "debug", "no-auth": true}`
	if err := os.WriteFile(filepath.Join(sd, "config.json"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		port      int
		host      string
		fallbacks []int
		level     string
	}{
		{name: "file only", port: 7001, host: "127.0.0.2", fallbacks: []int{7100, 7101}, level: "debug"},
		{name: "env over file", env: map[string]string{"PATCHD_PORT": "7002", "PATCHD_FALLBACK_PORT": "7200, 7201"},
			port: 7002, host: "127.0.0.2", fallbacks: []int{7200, 7201}, level: "debug"},
		{name: "flags over env", args: []string{"--port", "7003", "--fallback-port", "7300", "--fallback-port", "7301", "--log-level", "WARN"},
			env:  map[string]string{"PATCHD_PORT": "7002", "PATCHD_FALLBACK_PORT": "7200"},
			port: 7003, host: "127.0.0.2", fallbacks: []int{7300, 7301}, level: "warn"},
		{name: "no fallback", args: []string{"--fallback-port", "none"}, port: 7001, host: "127.0.0.2", level: "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, append([]string{"--workspace", ws}, tt.args...), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.Port != tt.port || c.Host != tt.host || c.LogLevel != tt.level || !reflect.DeepEqual(c.FallbackPorts, tt.fallbacks) {
				t.Errorf("got port=%d host=%s level=%s fallbacks=%v, want port=%d host=%s level=%s fallbacks=%v",
					c.Port, c.Host, c.LogLevel, c.FallbackPorts, tt.port, tt.host, tt.level, tt.fallbacks)
			}
			if c.ConfigFile == "" {
				t.Errorf("ConfigFile is empty, want the file read")
			}
		})
	}
}

func TestStateDirFromEnvLocatesConfigFile(t *testing.T) {
	ws, sd := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(sd, "config.json"), []byte(`{"port": 7400}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, []string{"--workspace", ws}, map[string]string{"PATCHD_STATE_DIR": sd})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 7400 || c.StateDir != sd {
		t.Errorf("port, state dir = %d, %s, want 7400, %s", c.Port, c.StateDir, sd)
	}
}

func TestErrors(t *testing.T) {
	ws := t.TempDir()
	missing := filepath.Join(ws, "nope.json")
	bad := filepath.Join(ws, "bad.json")
	os.WriteFile(bad, []byte(`{"prot": 1}`), 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "port range", args: []string{"--port", "70000"}, want: "--port: must be a port number"},
		{name: "port from env", env: map[string]string{"PATCHD_PORT": "x"}, want: `--port: must be a port number from 0 to 65535, not "x"`},
		{name: "fallback", args: []string{"--fallback-port", "-1"}, want: "--fallback-port"},
		{name: "if-running", args: []string{"--if-running", "maybe"}, want: "--if-running: must be standby or exit"},
		{name: "log level", args: []string{"--log-level", "loud"}, want: "--log-level"},
		{name: "no-auth public", args: []string{"--no-auth", "--host", "0.0.0.0"}, want: "--no-auth is refused with --host 0.0.0.0"},
		{name: "missing explicit config", args: []string{"--config", missing}, want: "config file"},
		{name: "unknown key", args: []string{"--config", bad}, want: `unknown setting "prot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, append([]string{"--workspace", ws}, tt.args...), tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNoAuthLoopbackAllowed(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		c, err := load(t, []string{"--workspace", t.TempDir(), "--no-auth", "--host", host}, nil)
		if err != nil || !c.NoAuth {
			t.Errorf("--no-auth --host %s = %v, %v; want allowed", host, c, err)
		}
	}
}

func TestPorts(t *testing.T) {
	c := &Config{Port: 5555, FallbackPorts: []int{5566, 5555, 5566, 0}}
	if got, want := c.Ports(), []int{5555, 5566, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("Ports() = %v, want %v", got, want)
	}
}

func TestAllowedHostAndOrigin(t *testing.T) {
	tests := []struct {
		args    []string
		hosts   []string
		origins []string
		err     string
	}{
		{args: []string{"--allowed-host", "Tunnel.Example:443", "--allowed-host", "[::1]"}, hosts: []string{"tunnel.example", "::1"}},
		{args: []string{"--allowed-origin", "https://Chat.OpenAI.com/"}, origins: []string{"https://chat.openai.com"}},
		{args: []string{"--allowed-host", "https://x.example/"}, err: "--allowed-host: must be a host name"},
		{args: []string{"--allowed-origin", "chat.openai.com"}, err: "--allowed-origin: must be an origin"},
		{args: []string{"--allowed-origin", "https://x.example/path"}, err: "--allowed-origin: must be an origin"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := Register(fs)
		if err := fs.Parse(append([]string{"--workspace", t.TempDir()}, tt.args...)); err != nil {
			t.Fatal(err)
		}
		c, err := f.Load(func(string) string { return "" })
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Load(%q) = %v, want an error with %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Load(%q) = %v", tt.args, err)
			continue
		}
		if !slices.Equal(c.AllowedHosts, tt.hosts) || !slices.Equal(c.AllowedOrigins, tt.origins) {
			t.Errorf("Load(%q): hosts %q, origins %q, want %q, %q", tt.args, c.AllowedHosts, c.AllowedOrigins, tt.hosts, tt.origins)
		}
	}
}

// TestPatchLimits: the limits on one patch have defaults and are read from
// each layer, sizes with or without a unit.
func TestPatchLimits(t *testing.T) {
	ws := t.TempDir()
	c, err := load(t, []string{"--workspace", ws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxFileBytes != 64<<20 || c.MaxPatchContent != 256<<20 || c.PlanTimeout != 10*time.Second || c.MaxEdits != 1000 {
		t.Errorf("defaults = %d, %d, %v, %d; want 64 MiB, 256 MiB, 10s, 1000", c.MaxFileBytes, c.MaxPatchContent, c.PlanTimeout, c.MaxEdits)
	}
	cfg := filepath.Join(ws, "c.json")
	os.WriteFile(cfg, []byte(`{"max-file-size": "1MiB", "max-patch-content": 3000000, "plan-timeout": "2s"}`), 0o600)
	c, err = load(t, []string{"--workspace", ws, "--config", cfg, "--plan-timeout", "500ms"}, map[string]string{"PATCHD_MAX_FILE_SIZE": "512k", "PATCHD_MAX_EDITS": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxFileBytes != 512<<10 || c.MaxPatchContent != 3000000 || c.PlanTimeout != 500*time.Millisecond || c.MaxEdits != 5 {
		t.Errorf("layered = %d, %d, %v; want 512 KiB, 3000000, 500ms", c.MaxFileBytes, c.MaxPatchContent, c.PlanTimeout)
	}
	for _, bad := range []string{"0", "-1", "1TiB0", "MiB", "9999999999G"} {
		if _, err := load(t, []string{"--workspace", ws, "--max-file-size", bad}, nil); err == nil || !strings.Contains(err.Error(), "--max-file-size: must be a positive size") {
			t.Errorf("--max-file-size %s: error %v, want a refusal naming the flag", bad, err)
		}
	}
}
