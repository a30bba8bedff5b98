package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFor: below ABI 4 (no TCP restriction) nothing confines enough,
// and the error says what the kernel has and what is needed.
func TestConfigFor(t *testing.T) {
	for abi, want := range map[int]string{0: "Landlock is not available", -1: "Landlock is not available", 3: "its Landlock ABI is 3, and the sandbox needs ABI 4"} {
		if _, err := configFor(abi); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("configFor(%d) = %v, want an error with %q", abi, err, want)
		}
	}
	for _, abi := range []int{4, 7, 11, 20} {
		cfg, err := configFor(abi)
		if err != nil || cfg.HandledAccessNet == 0 {
			t.Errorf("configFor(%d) = %v, %v, want a config restricting TCP", abi, cfg, err)
		}
	}
}

func TestResolve(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	os.Symlink("real", filepath.Join(dir, "link"))
	for in, want := range map[string]string{
		filepath.Join(dir, "link"):                 filepath.Join(dir, "real"),
		filepath.Join(dir, "link", "missing", "x"): filepath.Join(dir, "real", "missing", "x"),
		filepath.Join(dir, "link", "..", "real/."): filepath.Join(dir, "real"),
	} {
		if got, err := resolve(in); err != nil || got != want {
			t.Errorf("resolve(%s) = %s, %v, want %s", in, got, err, want)
		}
	}
	if _, err := resolve("relative"); err == nil {
		t.Errorf("resolve(relative) succeeded")
	}
}
