package workspace

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a workspace next to a directory it must never touch.
type fixture struct {
	base    string // parent of both
	ws      *Workspace
	wsDir   string
	outside string
}

// Contents of the protected files, distinct so a fuzz test can tell if any
// of them ever comes back from ReadFile.
const (
	secret     = "outside secret marker-1\n"
	gitConfig  = "[core] marker-2\n"
	stateToken = "token marker-3\n"
)

// newFixture builds:
//
//	base/outside/secret.txt
//	base/ws/src/app.py
//	base/ws/.git/config
//	base/ws/.patchd/token          (denied state dir)
//	base/ws/link      -> ../outside
//	base/ws/linkfile  -> ../outside/secret.txt
//	base/ws/abslink   -> base/outside (absolute)
//	base/ws/gitlink   -> .git
//	base/ws/statelink -> .patchd
//	base/ws/srclink   -> src
//	base/ws/loop      -> loop
func newFixture(t testing.TB) *fixture {
	t.Helper()
	base := t.TempDir()
	fx := &fixture{base: base, wsDir: filepath.Join(base, "ws"), outside: filepath.Join(base, "outside")}
	files := map[string]string{
		"outside/secret.txt": secret,
		"ws/src/app.py":      "print('hi')\n",
		"ws/.git/config":     gitConfig,
		"ws/.patchd/token":   stateToken,
	}
	for name, content := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustNoErr(t, os.WriteFile(p, []byte(content), 0o644))
	}
	links := map[string]string{
		"link":      "../outside",
		"linkfile":  "../outside/secret.txt",
		"abslink":   fx.outside,
		"gitlink":   ".git",
		"statelink": ".patchd",
		"srclink":   "src",
		"loop":      "loop",
	}
	for name, target := range links {
		mustNoErr(t, os.Symlink(target, filepath.Join(fx.wsDir, name)))
	}
	ws, err := Open(fx.wsDir, ".patchd")
	mustNoErr(t, err)
	t.Cleanup(func() { ws.Close() })
	fx.ws = ws
	return fx
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot records every file under dir with its content, and every link
// with its target, so a test can prove nothing changed or appeared.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "link:" + target
			return err
		case d.IsDir():
			got[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			got[rel] = "file:" + string(b)
			return err
		}
		return nil
	})
	mustNoErr(t, err)
	return got
}

// protected snapshots everything a refused operation must leave alone.
func (fx *fixture) protected(t testing.TB) map[string]string {
	t.Helper()
	all := snapshot(t, fx.outside)
	for _, dir := range []string{".git", ".patchd"} {
		for k, v := range snapshot(t, filepath.Join(fx.wsDir, dir)) {
			all[dir+"/"+k] = v
		}
	}
	return all
}

func TestOpen(t *testing.T) {
	fx := newFixture(t)
	if got := fx.ws.Dir(); got != fx.wsDir || !filepath.IsAbs(got) {
		t.Errorf("Dir() = %q, want %q", got, fx.wsDir)
	}
	if _, err := Open(filepath.Join(fx.wsDir, "src", "app.py")); err == nil {
		t.Errorf("Open(file) = nil error, want an error")
	}
	if _, err := Open(filepath.Join(fx.base, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	for _, deny := range []string{"../state", "/abs", ""} {
		if _, err := Open(fx.wsDir, deny); err == nil {
			t.Errorf("Open(dir, %q) = nil error, want an error", deny)
		}
	}
}

func TestCheck(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name, in, want, wantReason string
	}{
		{name: "plain", in: "./src//app.py", want: "src/app.py"},
		{name: "similar name", in: ".patchdx/a", want: ".patchdx/a"},
		{name: "nested state name", in: "sub/.patchd/a", want: "sub/.patchd/a"},
		{name: "git", in: ".git/config", wantReason: reasonGit},
		{name: "git upper", in: ".GIT/config", wantReason: reasonGit},
		{name: "state", in: ".patchd/token", wantReason: `refers to patchd's state directory ".patchd"`},
		{name: "state upper", in: ".PatchD/token", wantReason: `refers to patchd's state directory ".patchd"`},
		{name: "state itself", in: ".patchd", wantReason: `refers to patchd's state directory ".patchd"`},
		{name: "escape", in: "../x", wantReason: reasonEscapes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fx.ws.Check(tt.in)
			if tt.wantReason == "" {
				if err != nil || got != tt.want {
					t.Errorf("Check(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
				}
				return
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.Reason != tt.wantReason {
				t.Errorf("Check(%q) = %q, %v, want reason %q", tt.in, got, err, tt.wantReason)
			}
		})
	}
}

// TestEscapes tries every way out of the workspace (and into git internals
// or the state directory) with each operation, and proves the protected
// files are byte-for-byte unchanged and nothing new appeared next to them.
func TestEscapes(t *testing.T) {
	fx := newFixture(t)
	const escapeLink = "which leads outside the workspace"
	tests := []struct {
		name string
		path string
		// wantReason is a substring of the *PathError reason.
		wantReason string
	}{
		{name: "absolute", path: filepath.Join(fx.outside, "secret.txt"), wantReason: reasonAbsolute},
		{name: "absolute new", path: filepath.Join(fx.outside, "new.txt"), wantReason: reasonAbsolute},
		{name: "dotdot", path: "../outside/secret.txt", wantReason: reasonEscapes},
		{name: "dotdot new", path: "../outside", wantReason: reasonEscapes},
		{name: "climb", path: "a/../../outside/secret.txt", wantReason: reasonEscapes},
		{name: "dir link new file", path: "link/evil.txt", wantReason: escapeLink},
		{name: "dir link existing", path: "link/secret.txt", wantReason: escapeLink},
		{name: "dir link deeper", path: "link/new/evil.txt", wantReason: escapeLink},
		{name: "absolute link", path: "abslink/secret.txt", wantReason: escapeLink},
		{name: "file link", path: "linkfile", wantReason: reasonSymlink},
		{name: "git", path: ".git/config", wantReason: reasonGit},
		{name: "git upper", path: ".GIT/config", wantReason: reasonGit},
		{name: "git new hook", path: ".git/hooks/pre-commit", wantReason: reasonGit},
		{name: "git through link", path: "gitlink/config", wantReason: reasonGit + ` (through symbolic link "gitlink")`},
		{name: "git through link new dir", path: "gitlink/hooks/x/pre-commit", wantReason: reasonGit},
		{name: "state", path: ".patchd/token", wantReason: "state directory"},
		{name: "state new", path: ".patchd/queue/1.json", wantReason: "state directory"},
		{name: "state through link", path: "statelink/token", wantReason: `state directory ".patchd" (through symbolic link "statelink")`},
		{name: "link loop", path: "loop/x", wantReason: reasonLinkLoop},
	}
	ops := []struct {
		name string
		do   func(p string) error
	}{
		{"WriteFile", func(p string) error { return fx.ws.WriteFile(p, []byte("evil\n"), 0o644) }},
		{"ReadFile", func(p string) error {
			data, _, exists, err := fx.ws.ReadFile(p)
			if exists || strings.Contains(string(data), secret) {
				t.Errorf("ReadFile(%q) = %q, exists=%v, want nothing", p, data, exists)
			}
			return err
		}},
		{"Remove", func(p string) error { return fx.ws.Remove(p) }},
	}
	before := fx.protected(t)
	wsBefore := snapshot(t, fx.wsDir)
	for _, op := range ops {
		for _, tt := range tests {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				err := op.do(tt.path)
				var pe *PathError
				if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tt.wantReason) {
					t.Errorf("%s(%q) = %v, want reason containing %q", op.name, tt.path, err, tt.wantReason)
				}
				if after := fx.protected(t); !maps.Equal(after, before) {
					t.Errorf("%s(%q) changed protected files:\n got %v\nwant %v", op.name, tt.path, after, before)
				}
			})
		}
	}
	// Refused writes must not leave directories or temp files either.
	if after := snapshot(t, fx.wsDir); !maps.Equal(after, wsBefore) {
		t.Errorf("refused operations changed the workspace:\n got %v\nwant %v", after, wsBefore)
	}
}

// TestDenyResolvedAtOpen covers a state directory that is itself a link:
// its real location must be refused under its real name too.
func TestDenyResolvedAtOpen(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, os.MkdirAll(filepath.Join(fx.wsDir, "var", "state"), 0o755))
	mustNoErr(t, os.Symlink("var/state", filepath.Join(fx.wsDir, "statedir")))
	ws, err := Open(fx.wsDir, "statedir")
	mustNoErr(t, err)
	defer ws.Close()
	for _, p := range []string{"statedir/token", "var/state/token"} {
		err := ws.WriteFile(p, []byte("x"), 0)
		var pe *PathError
		if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "state directory") {
			t.Errorf("WriteFile(%q) = %v, want a state directory refusal", p, err)
		}
	}
	if err := ws.WriteFile("var/other.txt", []byte("x"), 0); err != nil {
		t.Errorf("WriteFile(%q) = %v, want nil", "var/other.txt", err)
	}
}

// TestLinkInsideWorkspace shows links that stay inside are followed: the
// write lands in the real directory, under its real name.
func TestLinkInsideWorkspace(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, fx.ws.WriteFile("srclink/new.py", []byte("x = 1\n"), 0))
	got, err := os.ReadFile(filepath.Join(fx.wsDir, "src", "new.py"))
	if err != nil || string(got) != "x = 1\n" {
		t.Errorf("after WriteFile(%q), src/new.py = %q, %v, want %q", "srclink/new.py", got, err, "x = 1\n")
	}
	data, _, exists, err := fx.ws.ReadFile("srclink/app.py")
	if err != nil || !exists || string(data) != "print('hi')\n" {
		t.Errorf("ReadFile(%q) = %q, %v, %v, want the file", "srclink/app.py", data, exists, err)
	}
}
