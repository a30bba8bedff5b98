package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/workspace"
)

// TestStateDirNamedDotDotInWorkspace: a state dir whose name begins with
// two dots (<workspace>/..patchd) lies inside the workspace and is
// protected as any other: a patch can neither write its token nor read it,
// while a sibling that merely shares the prefix stays writable. The rule
// is by path: the state dir is created only after the workspace is opened,
// so no identity of it is known then.
func TestStateDirNamedDotDotInWorkspace(t *testing.T) {
	ws := t.TempDir()
	sd := filepath.Join(ws, "..patchd")
	cfg := &config.Config{Workspace: ws, StateDir: sd, SummariesDir: filepath.Join(sd, "summaries")}
	w, err := workspace.OpenProtected(ws, protected(cfg))
	if err != nil {
		t.Fatalf("OpenProtected: %v", err)
	}
	defer w.Close()
	if err := os.MkdirAll(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, "token"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"..patchd/token", "..patchd/queue/x.json", "./..patchd/token", "a/../..patchd/token"} {
		err := w.WriteFile(p, []byte("planted\n"), 0o644)
		if err == nil || !strings.Contains(err.Error(), "state directory") {
			t.Errorf("WriteFile(%q) = %v, want it refused naming patchd's state directory", p, err)
		}
		if _, _, _, err := w.ReadFile(p); err == nil {
			t.Errorf("ReadFile(%q) succeeded, want it refused", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(sd, "token")); string(b) != "secret\n" {
		t.Errorf("token is now %q", b)
	}
	if err := w.WriteFile("..patchdx/a", []byte("ok\n"), 0o644); err != nil {
		t.Errorf("WriteFile(..patchdx/a) = %v, want it written (not the state dir)", err)
	}
}
