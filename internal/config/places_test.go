package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirPlacement: a state dir that is the workspace or contains it,
// under any spelling, is refused naming both; inside or beside it is fine.
func TestStateDirPlacement(t *testing.T) {
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	if err := os.MkdirAll(filepath.Join(ws, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ws, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(ws, "up")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		state, why string
	}{
		{ws, "is the workspace " + ws + " itself"},
		{filepath.Join(base, "link"), "itself"},
		{filepath.Join(ws, "sub", ".."), "itself"},
		{base, "contains the workspace " + ws},
		{filepath.Join(ws, "up"), "contains the workspace"},
		{"/", "contains the workspace"},
		{filepath.Join(ws, ".patchd"), ""},
		{filepath.Join(ws, "up", "state"), ""},
		{filepath.Join(base, "link", "sub", "state"), ""},
	}
	for _, tt := range tests {
		_, err := load(t, []string{"--workspace", ws, "--state-dir", tt.state}, nil)
		switch {
		case tt.why == "" && err != nil:
			t.Errorf("--state-dir %s: %v, want it accepted", tt.state, err)
		case tt.why != "" && (err == nil || !strings.Contains(err.Error(), "--state-dir "+tt.state+" ") || !strings.Contains(err.Error(), tt.why)):
			t.Errorf("--state-dir %s: %v, want a refusal naming it and saying it %s", tt.state, err, tt.why)
		}
	}
}
