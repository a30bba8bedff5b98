package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestService: `patchd service` prints a definition that runs this binary's
// `run` with the workspace, state dir and port given here, and the PATH in
// effect; --out writes the files instead and prints their paths.
func TestService(t *testing.T) {
	ws := t.TempDir()
	v := vars{"PATH": "/opt/go/bin:/usr/bin"}
	tests := []struct {
		supervisor string
		want       []string
	}{
		{"pm2", []string{"/opt/patchd/bin/patchd", `"run"`, ws, `"5566"`, "/opt/go/bin:/usr/bin"}},
		{"systemd", []string{"ExecStart=/opt/patchd/bin/patchd run", ws, "5566", "[Socket]", "/opt/go/bin:/usr/bin"}},
		{"launchd", []string{"<string>/opt/patchd/bin/patchd</string>", "<string>run</string>", ws, "5566", "/opt/go/bin:/usr/bin"}},
	}
	for _, tt := range tests {
		t.Run(tt.supervisor, func(t *testing.T) {
			r := run(t.Context(), v, "", "service", tt.supervisor, "--workspace", ws, "--port", "5566")
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("service %s: %s, want exit 0 and nothing on stderr", tt.supervisor, r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("service %s lacks %q:\n%s", tt.supervisor, w, r.stdout)
				}
			}
		})
	}

	out := filepath.Join(t.TempDir(), "units")
	r := run(t.Context(), v, "", "service", "systemd", "--out", out, "--name", "pd", "--workspace", ws)
	want := filepath.Join(out, "pd.service") + "\n" + filepath.Join(out, "pd.socket") + "\n"
	if r.code != ExitOK || r.stdout != want {
		t.Fatalf("service systemd --out: %s, want the two paths %q", r, want)
	}
	data, err := os.ReadFile(filepath.Join(out, "pd.service"))
	if err != nil || !strings.Contains(string(data), "ExecStart=/opt/patchd/bin/patchd run") {
		t.Errorf("pd.service = %q, %v", data, err)
	}
	if r := run(t.Context(), v, "", "service", "pm2", "--path", "none", "--workspace", ws); strings.Contains(r.stdout, "/opt/go/bin") {
		t.Errorf("service pm2 --path none carries the PATH: %s", r.stdout)
	}
}
