package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// argSamples holds, for every setting of the table, a value other than its
// default. A setting added to the table without one fails
// TestArgsRoundTrip, so no setting can be left out of Args unnoticed.
func argSamples(t *testing.T) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	return map[string][]string{
		"workspace":            {filepath.Join(dir, "ws")},
		"allow-root-workspace": {"true"},
		"state-dir":            {filepath.Join(dir, "state")},
		"host":                 {"::1"},
		"port":                 {"6001"},
		"fallback-port":        {"6002", "6003"},
		"log-level":            {"debug"},
		"if-running":           {"exit"},
		"pid-file":             {filepath.Join(dir, "run", "patchd.pid")},
		"log-max-size":         {"50"},
		"start-timeout":        {"60s"},
		"drain-timeout":        {"1m30s"},
		"no-auth":              {"true"},
		"trust-proxy":          {"true"},
		"metrics-public":       {"true"},
		"max-body":             {"2048"},
		"summaries-dir":        {filepath.Join(dir, "summaries")},
		"rate-limit":           {"2.5"},
		"git":                  {"true"},
		"check-sandbox":        {"true"},
		"max-file-size":        {"1MiB"},
		"max-patch-content":    {"3000001"},
		"max-edits":            {"5"},
		"plan-timeout":         {"250ms"},
		"rate-burst":           {"7"},
		"allowed-host":         {"a.example.com", "B.example.com:8443"},
		"allowed-origin":       {"https://chat.example.com", "http://localhost:3000"},
		"public-url":           {"https://patchd.example.com/hook/"},
		"health-detail":        {"public"},
		"max-conns":            {"100"},
		"max-conns-per-client": {"10"},
		"retain":               {"30d,50000"},
		"notify":               {"https://hooks.slack.com/services/T0/B0/secret", "https://example.com/hook#events=all&secret=k"},
		"queue":                {"nats://n1.example.com:4222,tls://n2.example.com:4443"},
		"workspace-name":       {"api-server"},
		"nats-user":            {"runner-api"},
		"nats-password-file":   {filepath.Join(dir, "nats.pass")},
		"nats-creds":           {filepath.Join(dir, "runner.creds")},
		"nats-ca":              {filepath.Join(dir, "ca.pem")},
		"max-deliver":          {"3"},
		"ack-wait":             {"1500ms"},
	}
}

// TestArgsRoundTrip: every setting of the table set to a value other than
// its default, alone and all together, survives Load(Args()), and Args
// names it; a setting Args leaves out must say why in the table.
func TestArgsRoundTrip(t *testing.T) {
	samples := argSamples(t)
	base := []string{"--workspace", samples["workspace"][0]}
	var all []string
	for _, s := range settings() {
		vals, ok := samples[s.name]
		if !ok {
			t.Errorf("setting %s has no sample in argSamples: add a value other than its default", s.name)
			continue
		}
		var args []string
		for _, v := range vals {
			args = append(args, "--"+s.name+"="+v)
		}
		// --nats-creds is the other way to authenticate than the
		// --nats-user the samples set: it goes alone.
		if s.notArgs == "" && s.name != "nats-creds" {
			all = append(all, args...)
		}
		t.Run(s.name, func(t *testing.T) {
			with := slices.Clone(base)
			if s.name == SettingQueue {
				// --queue alone is refused: it needs a --workspace-name.
				with = append(with, "--workspace-name=w")
			}
			c, err := load(t, append(with, args...), nil)
			if err != nil {
				t.Fatalf("load %v: %v", args, err)
			}
			got := c.Args()
			if s.notArgs != "" {
				if slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--"+s.name) }) {
					t.Errorf("Args() = %q names --%s, which the table leaves out (%s)", got, s.name, s.notArgs)
				}
				return
			}
			if !slices.ContainsFunc(got, func(a string) bool { return a == "--"+s.name || strings.HasPrefix(a, "--"+s.name+"=") }) {
				t.Errorf("Args() = %q, want --%s in it (set to %q)", got, s.name, vals)
			}
			roundTrip(t, c)
		})
	}
	t.Run("all", func(t *testing.T) {
		c, err := load(t, all, nil)
		if err != nil {
			t.Fatalf("load %v: %v", all, err)
		}
		roundTrip(t, c)
	})
}

// roundTrip checks that Load(c.Args()), with no environment, is c.
func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	args := c.Args()
	back, err := load(t, args, nil)
	if err != nil {
		t.Fatalf("Load(Args()) with Args() = %q: %v", args, err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Load(Args()) = %+v\nwant %+v\n(Args() = %q)", back, c, args)
	}
}

// TestArgsFromEnvAndFile: what the environment and the config file set is
// carried by Args too (a supervisor has neither the shell's environment
// nor a reason to read the file for it), and the file itself is named, for
// its checks; defaults are left out but for the pinned settings.
func TestArgsFromEnvAndFile(t *testing.T) {
	ws := t.TempDir()
	sd := filepath.Join(ws, ".patchd")
	if err := os.MkdirAll(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	file := `{"max-conns": 64, "fallback-port": [], "checks": [{"name": "t", "command": "true"}]}`
	cfgPath := filepath.Join(sd, "config.json")
	if err := os.WriteFile(cfgPath, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, []string{"--workspace", ws}, map[string]string{"PATCHD_LOG_MAX_SIZE": "50", "PATCHD_START_TIMEOUT": "60s"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{"--log-max-size 50", "--start-timeout 60s", "--max-conns 64", "--fallback-port none", "--config " + cfgPath} {
		if !strings.Contains(got, want) {
			t.Errorf("Args() = %s, want %q in it", got, want)
		}
	}
	for _, want := range []string{"--host 127.0.0.1", "--port 5555", "--drain-timeout 10s"} {
		if !strings.Contains(got, want) {
			t.Errorf("Args() = %s, want %q in it (pinned at its default)", got, want)
		}
	}
	for _, unwanted := range []string{"--log-level", "--summaries-dir", "--no-auth", "--rate-burst"} {
		if strings.Contains(got, unwanted+" ") {
			t.Errorf("Args() = %s, want no %s (left at its default)", got, unwanted)
		}
	}
	roundTrip(t, c)
}

// TestArgsNoSecrets: a setting whose name says it holds a secret must be
// one the table leaves out of Args, which goes into service definitions.
// One that names a file holding a secret (--nats-password-file) is a path,
// which service definitions carry.
func TestArgsNoSecrets(t *testing.T) {
	for _, s := range settings() {
		for _, w := range []string{"token", "secret", "password", "key"} {
			if strings.Contains(s.name, w) && s.notArgs == "" && !strings.HasSuffix(s.name, "-file") {
				t.Errorf("setting %s looks like a secret, but Args would write it into service definitions: give it a notArgs reason", s.name)
			}
		}
	}
}

// TestArgsConfigAbsolute: a config file named by a relative path is named
// absolute by Args, since a supervisor starts patchd in another directory.
func TestArgsConfigAbsolute(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "patchd.json"), []byte(`{"max-conns": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	c, err := load(t, []string{"--config", "patchd.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "--config " + filepath.Join(dir, "patchd.json")
	if got := strings.Join(c.Args(), " "); !strings.HasSuffix(got, want) {
		t.Errorf("Args() = %s, want it to end with %q", got, want)
	}
}
