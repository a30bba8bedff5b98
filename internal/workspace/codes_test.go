package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusalsNameNoMachinePath: a refusal reaches the sender of the patch,
// so it names patchd's own files by their path in the workspace, or by
// what they are when they lie outside it, never by their absolute path on
// this machine.
func TestRefusalsNameNoMachinePath(t *testing.T) {
	base := t.TempDir()
	ws := filepath.Join(base, "ws")
	for name, content := range map[string]string{
		"ws/.patchd/token":  stateToken,
		"ws/ci/patchd.json": "{}",
		"outside.json":      "{}",
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustNoErr(t, os.WriteFile(p, []byte(content), 0o644))
	}
	mustNoErr(t, os.Link(filepath.Join(ws, "ci", "patchd.json"), filepath.Join(ws, "copy.json")))
	mustNoErr(t, os.Link(filepath.Join(base, "outside.json"), filepath.Join(ws, "outside-copy.json")))
	w, err := OpenProtected(ws, []Protected{
		{Path: filepath.Join(ws, ".patchd"), What: "patchd's state directory"},
		{Path: filepath.Join(ws, "ci", "patchd.json"), What: "patchd's config file"},
		{Path: filepath.Join(base, "outside.json"), What: "patchd's other config file"},
	})
	mustNoErr(t, err)
	defer w.Close()
	tests := []struct{ path, want string }{
		{".patchd/token", `path ".patchd/token": refers to patchd's state directory ".patchd"`},
		{"ci/patchd.json", `path "ci/patchd.json": refers to patchd's config file "ci/patchd.json"`},
		{"copy.json", `path "copy.json": refers to patchd's config file "ci/patchd.json" under another name (the same file system object)`},
		{"outside-copy.json", `path "outside-copy.json": refers to patchd's other config file (outside the workspace) under another name (the same file system object)`},
	}
	for _, tt := range tests {
		_, err := w.Check(tt.path)
		if err == nil {
			_, _, _, err = w.ReadFile(tt.path)
		}
		switch {
		case err == nil:
			t.Errorf("read %q: no refusal, want %q", tt.path, tt.want)
		case strings.Contains(err.Error(), base):
			t.Errorf("read %q = %q, which names the machine's path %s", tt.path, err, base)
		case err.Error() != tt.want:
			t.Errorf("read %q = %q, want %q", tt.path, err, tt.want)
		}
	}
}

// TestCodes: every refusal of a path, and a failed write, has its code.
func TestCodes(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "ws")
	for name, content := range map[string]string{
		"ws/a.txt":         "a\n",
		"ws/big.txt":       "0123456789\n",
		"ws/dir/b.txt":     "b\n",
		"ws/ro/c.txt":      "c\n",
		"ws/.patchd/token": stateToken,
		"secret.txt":       "s\n",
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustNoErr(t, os.WriteFile(p, []byte(content), 0o644))
	}
	mustNoErr(t, os.Symlink(base, filepath.Join(dir, "out")))
	mustNoErr(t, os.Symlink("a.txt", filepath.Join(dir, "alink")))
	mustNoErr(t, os.Symlink("loop2", filepath.Join(dir, "loop1")))
	mustNoErr(t, os.Symlink("loop1", filepath.Join(dir, "loop2")))
	w, err := OpenProtected(dir, []Protected{{Path: filepath.Join(dir, ".patchd"), What: "patchd's state directory"}})
	mustNoErr(t, err)
	defer w.Close()

	read := func(p string) error { _, _, _, err := w.ReadFileMax(p, 8); return err }
	write := func(p string) error { return w.WriteFile(p, []byte("x\n"), 0) }
	tests := []struct {
		name string
		op   func(string) error
		path string
		code string
	}{
		{"empty", read, "", CodePathInvalid},
		{"absolute", read, "/etc/passwd", CodePathOutside},
		{"windows", write, `C:\x`, CodePathOutside},
		{"backslash", write, `a\b`, CodePathInvalid},
		{"NUL", write, "a\x00b", CodePathInvalid},
		{"root", write, ".", CodePathInvalid},
		{"trailing slash", write, "dir/", CodePathInvalid},
		{"link loop", write, "loop1/x", CodePathSymlink},
		{"dot dot", read, "../secret.txt", CodePathOutside},
		{"dot dot inside", write, "dir/../../secret.txt", CodePathOutside},
		{"link out", read, "out/secret.txt", CodePathOutside},
		{"git", write, ".git/config", CodePathGit},
		{"nested git", write, "dir/.GIT/hooks/pre-commit", CodePathGit},
		{"state dir", read, ".patchd/token", CodePathProtected},
		{"directory", write, "dir", CodePathNotRegular},
		{"symbolic link", write, "alink", CodePathSymlink},
		{"under a file", write, "a.txt/x", CodePathNotRegular},
		{"too large", read, "big.txt", CodeFileTooLarge},
	}
	if os.Geteuid() != 0 {
		mustNoErr(t, os.Chmod(filepath.Join(dir, "ro"), 0o555))
		t.Cleanup(func() { os.Chmod(filepath.Join(dir, "ro"), 0o755) })
		tests = append(tests, struct {
			name string
			op   func(string) error
			path string
			code string
		}{"read-only directory", write, "ro/c.txt", CodeIOFailed})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(tt.path)
			var c interface{ Code() string }
			switch {
			case err == nil:
				t.Fatalf("%q: no error, want %s", tt.path, tt.code)
			case !errors.As(err, &c) || c.Code() != tt.code:
				t.Errorf("%q: error %q has code %v, want %s", tt.path, err, c, tt.code)
			case strings.Contains(err.Error(), base):
				t.Errorf("%q: error %q names the machine's path %s", tt.path, err, base)
			}
		})
	}
}

// TestCodeByReason: a PathError made by another package, without a code,
// gets the code its reason says, as one made here does.
func TestCodeByReason(t *testing.T) {
	for _, p := range []string{"", "/etc/x", `C:\x`, "a\\b", "../x", ".", "a/", ".git/x"} {
		_, err := CleanPath(p)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Fatalf("CleanPath(%q) = %v, want a *PathError", p, err)
		}
		bare := &PathError{Path: pe.Path, Reason: pe.Reason}
		if bare.Code() != pe.Code() {
			t.Errorf("CleanPath(%q): code %s, but %s told by its reason %q", p, pe.Code(), bare.Code(), pe.Reason)
		}
	}
	for reason, want := range map[string]string{
		reasonSymlink: CodePathSymlink, reasonLinkLoop: CodePathSymlink, reasonDir: CodePathNotRegular,
		`refers to patchd's state directory ".patchd"`:                        CodePathProtected,
		`passes through symbolic link "a", which leads outside the workspace`: CodePathOutside,
	} {
		if got := (&PathError{Path: "p", Reason: reason}).Code(); got != want {
			t.Errorf("PathError with reason %q: code %s, want %s", reason, got, want)
		}
	}
}
