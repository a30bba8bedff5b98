package workspace

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestFileID: paths that lead to one file have one id, however they are
// spelled; other files, hard links among them, have their own.
func TestFileID(t *testing.T) {
	f := newFixture(t)
	mustNoErr(t, os.MkdirAll(filepath.Join(f.wsDir, "sub"), 0o755))
	mustNoErr(t, os.Symlink("..", filepath.Join(f.wsDir, "sub", "up")))
	mustNoErr(t, os.WriteFile(filepath.Join(f.wsDir, "a.txt"), []byte("a\n"), 0o644))
	mustNoErr(t, os.Link(filepath.Join(f.wsDir, "a.txt"), filepath.Join(f.wsDir, "hard.txt")))
	mustNoErr(t, os.WriteFile(filepath.Join(f.wsDir, "b.txt"), []byte("b\n"), 0o644))
	id := func(p string) string {
		t.Helper()
		s, err := f.ws.FileID(p)
		if err != nil {
			t.Fatalf("FileID(%q): %v", p, err)
		}
		return s
	}
	same := [][2]string{
		{"a.txt", "sub/up/a.txt"},
		{"src/app.py", "srclink/app.py"},
		{"src/app.py", "sub/up/srclink/app.py"},
		{"new/x.txt", "sub/up/new/x.txt"},
		{"b.txt", "sub/../b.txt"},
	}
	for _, p := range same {
		if a, b := id(p[0]), id(p[1]); a != b {
			t.Errorf("FileID(%q) = %q, FileID(%q) = %q, want the same", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{{"a.txt", "b.txt"}, {"a.txt", "hard.txt"}, {"new/x.txt", "x.txt"}, {"sub/up/new/x.txt", "sub/new/x.txt"}}
	for _, p := range differ {
		if a, b := id(p[0]), id(p[1]); a == b {
			t.Errorf("FileID(%q) = FileID(%q) = %q, want them told apart", p[0], p[1], a)
		}
	}
	if runtime.GOOS != "windows" {
		for _, p := range []string{"link/secret.txt", ".git/config", "statelink/token"} {
			if s, err := f.ws.FileID(p); err == nil {
				t.Errorf("FileID(%q) = %q, want the refusal ReadFile gives", p, s)
			}
		}
	}
}
