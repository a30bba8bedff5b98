// Package workspacetest holds the hostile paths the workspace's resolver
// is tested with, and the tree of traps they need, so that every other
// way of reaching the workspace's files (patchsvc's ReadFile and
// ListFiles) is held to the very same refusals with the very same codes.
// It is for tests only, and imports no patchd package, so that the
// workspace's own tests can use it too.
package workspacetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tree is a workspace full of traps next to a directory it must never
// reach.
type Tree struct {
	Base    string // parent of Dir and Outside
	Dir     string // the workspace root
	Outside string // base/outside, with secret.txt
	// The paths to protect (workspace.Protected) when opening Dir:
	// patchd's state directory, its config file in the workspace, and a
	// config file outside it (hard-linked into the workspace).
	StateDir, Config, OutsideConfig string
}

// Contents of the files no refused path may ever show, distinct so a
// test can look for each.
const (
	Secret     = "outside secret marker-1\n"
	GitConfig  = "[core] marker-2\n"
	StateToken = "token marker-3\n"
	ConfigText = "{\"marker\": 4}\n"
)

// Build makes the tree:
//
//	base/outside/secret.txt
//	base/outside.json                (a config file outside the workspace)
//	base/ws/a.txt, dir/b.txt, src/app.py
//	base/ws/.git/config
//	base/ws/.patchd/token            (the state directory)
//	base/ws/ci/patchd.json           (the config file)
//	base/ws/copy.json                hard link of ci/patchd.json
//	base/ws/outside-copy.json        hard link of base/outside.json
//	base/ws/link      -> ../outside
//	base/ws/linkfile  -> ../outside/secret.txt
//	base/ws/abslink   -> base/outside (absolute)
//	base/ws/out       -> base (absolute)
//	base/ws/gitlink   -> .git
//	base/ws/statelink -> .patchd
//	base/ws/cilink    -> ci
//	base/ws/srclink   -> src
//	base/ws/alink     -> a.txt
//	base/ws/loop      -> loop
//	base/ws/loop1     -> loop2 -> loop1
func Build(t testing.TB) Tree {
	t.Helper()
	base := t.TempDir()
	tr := Tree{Base: base, Dir: filepath.Join(base, "ws"), Outside: filepath.Join(base, "outside")}
	tr.StateDir = filepath.Join(tr.Dir, ".patchd")
	tr.Config = filepath.Join(tr.Dir, "ci", "patchd.json")
	tr.OutsideConfig = filepath.Join(base, "outside.json")
	for name, content := range map[string]string{
		"outside/secret.txt": Secret,
		"outside.json":       ConfigText,
		"ws/a.txt":           "a\n",
		"ws/dir/b.txt":       "b\n",
		"ws/src/app.py":      "print('hi')\n",
		"ws/.git/config":     GitConfig,
		"ws/.patchd/token":   StateToken,
		"ws/ci/patchd.json":  ConfigText,
	} {
		p := filepath.Join(base, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
	must(t, os.Link(tr.Config, filepath.Join(tr.Dir, "copy.json")))
	must(t, os.Link(tr.OutsideConfig, filepath.Join(tr.Dir, "outside-copy.json")))
	for name, target := range map[string]string{
		"link": "../outside", "linkfile": "../outside/secret.txt", "abslink": tr.Outside, "out": base,
		"gitlink": ".git", "statelink": ".patchd", "cilink": "ci", "srclink": "src", "alink": "a.txt",
		"loop": "loop", "loop1": "loop2", "loop2": "loop1",
	} {
		must(t, os.Symlink(target, filepath.Join(tr.Dir, name)))
	}
	return tr
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Case is a hostile path and the code the resolver refuses it with.
type Case struct {
	Name string
	Path string
	Code string
	// FileOnly marks a path refused only as a file (the root, a
	// directory, a trailing slash): a listing of it is not refused.
	FileOnly bool
	// DirCode, when set, is the code a listing answers instead: as a
	// directory, a final symbolic link is followed (as a patch's parent
	// directories are) and refused for where it leads.
	DirCode string
}

// The codes, as the workspace package names them.
const (
	CodeInvalid    = "path_invalid"
	CodeOutside    = "path_outside_workspace"
	CodeGit        = "path_git_internals"
	CodeProtected  = "path_protected"
	CodeSymlink    = "path_symlink"
	CodeNotRegular = "path_not_regular"
)

// Cases returns every hostile path the resolver's tests use (TestCleanPath,
// TestCodes, TestEscapes, TestProtected), for the tree tr.
func Cases(tr Tree) []Case {
	return []Case{
		{Name: "empty", Path: "", Code: CodeInvalid, FileOnly: true},
		{Name: "too long", Path: strings.Repeat("a", 4097), Code: CodeInvalid},
		{Name: "NUL", Path: "a\x00b", Code: CodeInvalid},
		{Name: "absolute", Path: "/etc/passwd", Code: CodeOutside},
		{Name: "absolute into outside", Path: filepath.Join(tr.Outside, "secret.txt"), Code: CodeOutside},
		{Name: "absolute workspace file", Path: filepath.Join(tr.Dir, "a.txt"), Code: CodeOutside},
		{Name: "absolute double slash", Path: "//server/share", Code: CodeOutside},
		{Name: "windows drive backslash", Path: `C:\Windows\win.ini`, Code: CodeOutside},
		{Name: "windows drive slash", Path: "c:/x", Code: CodeOutside},
		{Name: "windows drive relative", Path: "C:x", Code: CodeOutside},
		{Name: "drive after cleaning", Path: "./C:x", Code: CodeOutside},
		{Name: "leading backslash", Path: `\x`, Code: CodeOutside},
		{Name: "unc", Path: `\\server\share\x`, Code: CodeOutside},
		{Name: "inner backslash", Path: `src\app.py`, Code: CodeInvalid},
		{Name: "backslash dotdot", Path: `..\x`, Code: CodeInvalid},
		{Name: "dotdot", Path: "..", Code: CodeOutside},
		{Name: "dotdot prefix", Path: "../outside/secret.txt", Code: CodeOutside},
		{Name: "dotdot after climb", Path: "a/../../outside/secret.txt", Code: CodeOutside},
		{Name: "dot dotdot", Path: "./../x", Code: CodeOutside},
		{Name: "dotdot inside", Path: "dir/../../outside/secret.txt", Code: CodeOutside},
		{Name: "root", Path: ".", Code: CodeInvalid, FileOnly: true},
		{Name: "root slash", Path: "./", Code: CodeInvalid, FileOnly: true},
		{Name: "back to root", Path: "a/..", Code: CodeInvalid, FileOnly: true},
		{Name: "trailing slash", Path: "dir/", Code: CodeInvalid, FileOnly: true},
		{Name: "directory", Path: "dir", Code: CodeNotRegular, FileOnly: true},
		{Name: "under a file", Path: "a.txt/x", Code: CodeNotRegular},
		{Name: "dir link existing", Path: "link/secret.txt", Code: CodeOutside},
		{Name: "dir link new file", Path: "link/evil.txt", Code: CodeOutside},
		{Name: "dir link deeper", Path: "link/new/evil.txt", Code: CodeOutside},
		{Name: "dir link itself", Path: "link", Code: CodeSymlink, DirCode: CodeOutside},
		{Name: "absolute link", Path: "abslink/secret.txt", Code: CodeOutside},
		{Name: "link to the parent", Path: "out/outside/secret.txt", Code: CodeOutside},
		{Name: "file link out", Path: "linkfile", Code: CodeSymlink, DirCode: CodeOutside},
		{Name: "file link in", Path: "alink", Code: CodeSymlink},
		{Name: "link loop", Path: "loop/x", Code: CodeSymlink},
		{Name: "link loop itself", Path: "loop", Code: CodeSymlink},
		{Name: "link cycle", Path: "loop1/x", Code: CodeSymlink},
		{Name: "git", Path: ".git", Code: CodeGit},
		{Name: "git config", Path: ".git/config", Code: CodeGit},
		{Name: "git upper", Path: ".GIT/config", Code: CodeGit},
		{Name: "git mixed", Path: ".Git/hooks/pre-commit", Code: CodeGit},
		{Name: "git nested", Path: "vendor/lib/.git/hooks/post-checkout", Code: CodeGit},
		{Name: "git nested upper", Path: "dir/.GIT/hooks/pre-commit", Code: CodeGit},
		{Name: "git via dot", Path: "./.git/config", Code: CodeGit},
		{Name: "git via dotdot", Path: "a/../.git/config", Code: CodeGit},
		{Name: "git hfs ignorable", Path: ".g\u200cit/config", Code: CodeGit},
		{Name: "git hfs bom", Path: "\ufeff.git/config", Code: CodeGit},
		{Name: "git through link", Path: "gitlink/config", Code: CodeGit},
		{Name: "git through link new dir", Path: "gitlink/hooks/x/pre-commit", Code: CodeGit},
		{Name: "git link itself", Path: "gitlink", Code: CodeSymlink, DirCode: CodeGit},
		{Name: "state", Path: ".patchd/token", Code: CodeProtected},
		{Name: "state itself", Path: ".patchd", Code: CodeProtected},
		{Name: "state upper", Path: ".PatchD/token", Code: CodeProtected},
		{Name: "state new", Path: ".patchd/queue/1.json", Code: CodeProtected},
		{Name: "state through link", Path: "statelink/token", Code: CodeProtected},
		{Name: "state link itself", Path: "statelink", Code: CodeSymlink, DirCode: CodeProtected},
		{Name: "config", Path: "ci/patchd.json", Code: CodeProtected},
		{Name: "config through link", Path: "cilink/patchd.json", Code: CodeProtected},
		{Name: "config hard link", Path: "copy.json", Code: CodeProtected},
		{Name: "outside config hard link", Path: "outside-copy.json", Code: CodeProtected},
	}
}
