package workspace

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRealPath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("..", filepath.Join(dir, "sub", "up"))
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for rel, want := range map[string]string{"HEAD": "HEAD", "sub/up/HEAD": "HEAD", "sub/up/sub/x": "sub/x", "new/dir/f": "new/dir/f", "sub/up/new/f": "new/f"} {
		if got, err := w.RealPath(rel); err != nil || got != want {
			t.Errorf("RealPath(%q) = %q, %v, want %q", rel, got, err, want)
		}
	}
	if _, err := w.RealPath("../x"); err == nil {
		t.Errorf("RealPath(../x) = nil error, want refused")
	}
}
