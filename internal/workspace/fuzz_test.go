package workspace

import (
	"bytes"
	"context"
	"io"
	"maps"
	"testing"
)

// FuzzWorkspaceAccess throws arbitrary paths at ReadFile, Open, Walk,
// WriteFile and Remove in a workspace full of traps (links out, links into .git and the
// state directory, a loop) and checks that no protected file is ever read,
// changed or joined by a new file.
func FuzzWorkspaceAccess(f *testing.F) {
	for _, s := range []string{
		"src/app.py", "new/dir/file.txt", "../outside/secret.txt", "link/evil.txt",
		"link/secret.txt", "linkfile", "abslink/secret.txt", "gitlink/config", "gitlink", "statelink", "link", "", ".",
		"gitlink/hooks/pre-commit", "statelink/token", ".GIT/config",
		".patchd/token", "srclink/x.py", "loop/x", "srclink/../link/x",
	} {
		f.Add(s)
	}
	fx := newFixture(f)
	before := fx.protected(f)
	markers := [][]byte{[]byte(secret), []byte(gitConfig), []byte(stateToken)}
	f.Fuzz(func(t *testing.T, p string) {
		data, _, _, _ := fx.ws.ReadFile(p)
		for _, m := range markers {
			if bytes.Contains(data, m) {
				t.Fatalf("ReadFile(%q) returned protected content %q", p, data)
			}
		}
		if f, err := fx.ws.Open(p); err == nil {
			data, _ := io.ReadAll(f)
			f.Close()
			for _, m := range markers {
				if bytes.Contains(data, m) {
					t.Fatalf("Open(%q) read protected content %q", p, data)
				}
			}
		}
		fx.ws.Walk(context.Background(), p, WalkOptions{File: "config", MaxFile: 1 << 10}, func(e WalkEntry) error {
			if hasGitComponent(e.Path) || hasPrefixComponents(e.Path, ".patchd") {
				t.Fatalf("Walk(%q) visited %q", p, e.Path)
			}
			for _, m := range markers {
				if bytes.Contains(e.File, m) {
					t.Fatalf("Walk(%q) read protected content %q in %q", p, e.File, e.Path)
				}
			}
			if !e.Dir {
				if data, _, _, err := fx.ws.ReadFile(e.Path); err != nil {
					t.Fatalf("Walk(%q) visited %q, which ReadFile refuses: %v", p, e.Path, err)
				} else {
					for _, m := range markers {
						if bytes.Contains(data, m) {
							t.Fatalf("Walk(%q) visited %q, holding protected content", p, e.Path)
						}
					}
				}
			}
			return nil
		})
		payload := []byte("fuzz " + p)
		if err := fx.ws.WriteFile(p, payload, 0); err == nil {
			got, _, exists, err := fx.ws.ReadFile(p)
			if err != nil || !exists || !bytes.Equal(got, payload) {
				t.Fatalf("ReadFile(%q) after WriteFile = %q, %v, %v, want %q", p, got, exists, err, payload)
			}
			if err := fx.ws.Remove(p); err != nil {
				t.Fatalf("Remove(%q) after WriteFile = %v, want nil", p, err)
			}
		}
		fx.ws.Remove(p)
		if after := fx.protected(t); !maps.Equal(after, before) {
			t.Fatalf("path %q changed protected files:\n got %v\nwant %v", p, after, before)
		}
	})
}
