package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceCarriesSettings: `patchd service` writes every setting that
// differs from its default into the definition, as flags of `patchd run`,
// whether given as a flag, a PATCHD_* variable of the shell or in the
// config file (before, --log-max-size, --start-timeout and the settings
// added since were lost); PM2's listen_timeout and launchd's wait follow
// --start-timeout; the token never goes into a definition (issue 11).
func TestServiceCarriesSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.MkdirAll(e.stateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.stateDir(), "config.json"), []byte(`{"max-edits": 50}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	token := e.token()
	flags := []string{
		"--log-max-size", "50", "--start-timeout", "60s", "--max-conns", "100", "--max-conns-per-client", "10",
		"--allowed-host", "patchd.example.com", "--allowed-origin", "https://chat.example.com",
		"--public-url", "https://patchd.example.com", "--health-detail", "public", "--check-sandbox",
		"--max-file-size", "8MiB", "--max-patch-content", "32MiB", "--plan-timeout", "30s", "--max-body", "2048",
	}
	want := []string{
		"--log-max-size 50", "--start-timeout 60s", "--max-conns 100", "--max-conns-per-client 10",
		"--allowed-host patchd.example.com", "--allowed-origin https://chat.example.com",
		"--public-url https://patchd.example.com", "--health-detail public", "--check-sandbox",
		"--max-file-size 8MiB", "--max-patch-content 32MiB", "--plan-timeout 30s", "--max-body 2048",
		"--rate-limit 5", // from the shell's PATCHD_RATE_LIMIT
		"--max-edits 50", // from the config file
		"--config " + filepath.Join(e.stateDir(), "config.json"),
	}
	gen := func(kind string) string {
		t.Helper()
		cmd := e.command(append([]string{"service", kind}, flags...)...)
		cmd.Env = append(cmd.Env, "PATCHD_RATE_LIMIT=5")
		r := runCmd(t, cmd)
		if r.code != 0 {
			t.Fatalf("service %s: %s", kind, r)
		}
		if strings.Contains(r.stdout, token) {
			t.Errorf("service %s: the definition holds the token:\n%s", kind, r.stdout)
		}
		return r.stdout
	}

	unit := gen("systemd")
	exec := ""
	for l := range strings.Lines(unit) {
		if strings.HasPrefix(l, "ExecStart=") {
			exec = strings.TrimSpace(l)
		}
	}
	for _, w := range want {
		if !strings.Contains(exec+" ", " "+w+" ") {
			t.Errorf("service systemd: %s\nwant %q in it", exec, w)
		}
	}

	pm2 := gen("pm2")
	for _, w := range want {
		if q := `"` + strings.ReplaceAll(w, " ", `", "`) + `"`; !strings.Contains(pm2, q) {
			t.Errorf("service pm2: want %s in args:\n%s", q, pm2)
		}
	}
	// PM2 waits for "ready" for the start timeout and a margin.
	if !strings.Contains(pm2, "listen_timeout: 65000,") {
		t.Errorf("service pm2 --start-timeout 60s: want listen_timeout: 65000:\n%s", pm2)
	}

	plist := gen("launchd")
	for _, w := range want {
		if q := "<string>" + strings.ReplaceAll(w, " ", "</string>\n\t\t<string>") + "</string>"; !strings.Contains(plist, q) {
			t.Errorf("service launchd: want %q in ProgramArguments:\n%s", q, plist)
		}
	}
}
