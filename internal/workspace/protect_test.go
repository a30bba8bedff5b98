package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProtected: patchd's own paths are refused however the workspace and
// the path are spelled: the workspace opened through a symbolic link, the
// path named from inside, a link inside the workspace, a hard link.
func TestProtected(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	for name, content := range map[string]string{
		"real/.patchd/token":  stateToken,
		"real/ci/patchd.json": "{}",
		"outside.json":        "{}",
		"real/src/app.py":     "x\n",
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustNoErr(t, os.WriteFile(p, []byte(content), 0o644))
	}
	mustNoErr(t, os.Symlink(real, filepath.Join(base, "link")))
	mustNoErr(t, os.Symlink("ci", filepath.Join(real, "cilink")))
	mustNoErr(t, os.Link(filepath.Join(real, "ci", "patchd.json"), filepath.Join(real, "copy.json")))
	mustNoErr(t, os.Link(filepath.Join(base, "outside.json"), filepath.Join(real, "outside-copy.json")))
	ws, err := OpenProtected(filepath.Join(base, "link"), []Protected{
		{Path: filepath.Join(real, ".patchd"), What: "patchd's state directory"},
		{Path: filepath.Join(real, "ci", "patchd.json"), What: "patchd's config file"},
		{Path: filepath.Join(base, "outside.json"), What: "patchd's other config file"},
		{Path: filepath.Join(base, "link", "docs"), What: "patchd's summaries directory"},
		{Path: base, What: "patchd's summaries directory", Optional: true},
	})
	mustNoErr(t, err)
	defer ws.Close()
	tests := []struct{ path, want string }{
		{".patchd/token", `refers to patchd's state directory ".patchd"`},
		{".patchd/config.json", "patchd's state directory"},
		{"ci/patchd.json", "patchd's config file"},
		{"cilink/patchd.json", `(through symbolic link "cilink")`},
		{"copy.json", `patchd's config file "ci/patchd.json" under another name`},
		{"outside-copy.json", "patchd's other config file"},
		{"docs/P1.md", "patchd's summaries directory"},
	}
	for _, tt := range tests {
		for op, do := range map[string]func() error{
			"write": func() error { return ws.WriteFile(tt.path, []byte("attack"), 0) },
			"read":  func() error { _, _, _, err := ws.ReadFile(tt.path); return err },
		} {
			var pe *PathError
			if err := do(); !errors.As(err, &pe) || !strings.Contains(pe.Reason, tt.want) {
				t.Errorf("%s %q = %v, want a refusal with %q", op, tt.path, err, tt.want)
			}
		}
	}
	if err := ws.WriteFile("src/app.py", []byte("y\n"), 0); err != nil {
		t.Errorf("write of a workspace file: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(real, "ci", "patchd.json")); string(data) != "{}" {
		t.Errorf("config file = %q after refused writes", data)
	}

	for _, p := range []string{real, base, filepath.Join(base, "link")} {
		_, err := OpenProtected(filepath.Join(base, "link"), []Protected{{Path: p, What: "patchd's state directory"}})
		if err == nil || !strings.Contains(err.Error(), "is the workspace or contains it") {
			t.Errorf("OpenProtected with the state dir %s = %v, want it refused as the workspace or above", p, err)
		}
	}
}
