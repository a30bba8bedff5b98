package workspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/workspace/workspacetest"
)

// openTree opens a workspacetest tree with patchd's files protected.
func openTree(t *testing.T) (workspacetest.Tree, *Workspace) {
	t.Helper()
	tr := workspacetest.Build(t)
	w, err := OpenProtected(tr.Dir, []Protected{
		{Path: tr.StateDir, What: "patchd's state directory"},
		{Path: tr.Config, What: "patchd's config file"},
		{Path: tr.OutsideConfig, What: "patchd's other config file"},
	})
	mustNoErr(t, err)
	t.Cleanup(func() { w.Close() })
	return tr, w
}

// TestHostilePaths: the shared table of hostile paths (workspacetest, which
// patchsvc's ReadFile and ListFiles are held to as well) is refused by
// every operation with its code, and nothing outside, in .git or in
// patchd's files changes.
func TestHostilePaths(t *testing.T) {
	tr, w := openTree(t)
	codeOf := func(err error) string {
		var c interface{ Code() string }
		if errors.As(err, &c) {
			return c.Code()
		}
		return ""
	}
	walk := func(p string) error {
		return w.Walk(context.Background(), p, WalkOptions{}, func(WalkEntry) error { return nil })
	}
	for _, tt := range workspacetest.Cases(tr) {
		t.Run(tt.Name, func(t *testing.T) {
			ops := map[string]func() error{
				"Check": func() error {
					if _, err := w.Check(tt.Path); err != nil {
						return err
					}
					// Check is lexical; the rest sees the file system.
					_, err := w.Open(tt.Path)
					return err
				},
				"ReadFile": func() error {
					data, _, exists, err := w.ReadFile(tt.Path)
					if exists || len(data) > 0 {
						t.Errorf("ReadFile(%q) = %q, exists %v", tt.Path, data, exists)
					}
					return err
				},
				"Open": func() error {
					f, err := w.Open(tt.Path)
					if f != nil {
						f.Close()
						t.Errorf("Open(%q) opened it", tt.Path)
					}
					return err
				},
				"WriteFile": func() error { return w.WriteFile(tt.Path, []byte("evil\n"), 0) },
				"Remove":    func() error { return w.Remove(tt.Path) },
			}
			for name, op := range ops {
				err := op()
				if got := codeOf(err); got != tt.Code {
					t.Errorf("%s(%q) = %v (code %q), want code %s", name, tt.Path, err, got, tt.Code)
				}
				if err != nil && !strings.Contains(tt.Path, tr.Base) && strings.Contains(err.Error(), tr.Base) {
					t.Errorf("%s(%q) = %q, which names the machine's path", name, tt.Path, err)
				}
			}
			want := tt.Code
			if tt.DirCode != "" {
				want = tt.DirCode
			}
			if err := walk(tt.Path); tt.FileOnly && err != nil {
				t.Errorf("Walk(%q) = %v, want it listed", tt.Path, err)
			} else if got := codeOf(err); !tt.FileOnly && got != want {
				t.Errorf("Walk(%q) = %v (code %q), want code %s", tt.Path, err, got, want)
			}
		})
	}
	for path, want := range map[string]string{
		filepath.Join(tr.Outside, "secret.txt"): workspacetest.Secret,
		filepath.Join(tr.Dir, ".git", "config"): workspacetest.GitConfig,
		filepath.Join(tr.StateDir, "token"):     workspacetest.StateToken,
		tr.Config:                               workspacetest.ConfigText,
	} {
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v after the refusals, want %q", path, got, err, want)
		}
	}
	for _, p := range []string{filepath.Join(tr.Outside, "evil.txt"), filepath.Join(tr.Dir, ".git", "hooks"), filepath.Join(tr.StateDir, "queue")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists after the refusals", p)
		}
	}
}
