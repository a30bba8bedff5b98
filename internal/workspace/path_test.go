package workspace

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       string
		wantReason string // "" means success
	}{
		{name: "plain", in: "src/app.py", want: "src/app.py"},
		{name: "dot prefix", in: "./src/app.py", want: "src/app.py"},
		{name: "double slash", in: "src//app.py", want: "src/app.py"},
		{name: "inner dot", in: "src/./app.py", want: "src/app.py"},
		{name: "inner dotdot stays inside", in: "a/../b.txt", want: "b.txt"},
		{name: "dotfile", in: ".env", want: ".env"},
		{name: "gitignore is not git", in: ".gitignore", want: ".gitignore"},
		{name: "gitattributes nested", in: "sub/.gitattributes", want: "sub/.gitattributes"},
		{name: "github dir", in: ".github/workflows/ci.yml", want: ".github/workflows/ci.yml"},
		{name: "git-prefixed name", in: ".gitx/config", want: ".gitx/config"},
		{name: "colon later", in: "src/c:x", want: "src/c:x"},
		{name: "unicode", in: "doc/été.md", want: "doc/été.md"},
		{name: "spaces", in: "my dir/a b.txt", want: "my dir/a b.txt"},
		{name: "max length", in: strings.Repeat("a", MaxPathLen), want: strings.Repeat("a", MaxPathLen)},

		{name: "empty", in: "", wantReason: reasonEmpty},
		{name: "too long", in: strings.Repeat("a", MaxPathLen+1), wantReason: reasonTooLong},
		{name: "nul", in: "a\x00b", wantReason: reasonNUL},
		{name: "absolute", in: "/etc/passwd", wantReason: reasonAbsolute},
		{name: "absolute double slash", in: "//server/share", wantReason: reasonAbsolute},
		{name: "windows drive backslash", in: `C:\Windows\win.ini`, wantReason: reasonWindowsAbs},
		{name: "windows drive slash", in: "c:/x", wantReason: reasonWindowsAbs},
		{name: "windows drive relative", in: "C:x", wantReason: reasonWindowsAbs},
		{name: "drive after cleaning", in: "./C:x", wantReason: reasonWindowsAbs},
		{name: "leading backslash", in: `\x`, wantReason: reasonWindowsAbs},
		{name: "unc", in: `\\server\share\x`, wantReason: reasonWindowsAbs},
		{name: "inner backslash", in: `src\app.py`, wantReason: reasonBackslash},
		{name: "backslash dotdot", in: `..\x`, wantReason: reasonBackslash},
		{name: "dotdot", in: "..", wantReason: reasonEscapes},
		{name: "dotdot prefix", in: "../outside", wantReason: reasonEscapes},
		{name: "dotdot after climb", in: "a/../../outside", wantReason: reasonEscapes},
		{name: "dot dotdot", in: "./../x", wantReason: reasonEscapes},
		{name: "dot", in: ".", wantReason: reasonRoot},
		{name: "dot slash", in: "./", wantReason: reasonRoot},
		{name: "back to root", in: "a/..", wantReason: reasonRoot},
		{name: "trailing slash", in: "src/", wantReason: reasonDirSlash},
		{name: "git", in: ".git", wantReason: reasonGit},
		{name: "git config", in: ".git/config", wantReason: reasonGit},
		{name: "git upper", in: ".GIT/config", wantReason: reasonGit},
		{name: "git mixed", in: ".Git/hooks/pre-commit", wantReason: reasonGit},
		{name: "git nested", in: "vendor/lib/.git/hooks/post-checkout", wantReason: reasonGit},
		{name: "git via dot", in: "./.git/config", wantReason: reasonGit},
		{name: "git via dotdot", in: "a/../.git/config", wantReason: reasonGit},
		{name: "git hfs ignorable", in: ".g\u200cit/config", wantReason: reasonGit},
		{name: "git hfs bom", in: "\ufeff.git/config", wantReason: reasonGit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CleanPath(tt.in)
			if tt.wantReason == "" {
				if err != nil || got != tt.want {
					t.Errorf("CleanPath(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
				}
				return
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.Reason != tt.wantReason || pe.Path != tt.in {
				t.Errorf("CleanPath(%q) = %q, %v, want reason %q", tt.in, got, err, tt.wantReason)
			}
			if got != "" {
				t.Errorf("CleanPath(%q) returned %q with an error, want \"\"", tt.in, got)
			}
		})
	}
}

func TestPathErrorMessage(t *testing.T) {
	_, err := CleanPath("../x")
	if got, want := err.Error(), `path "../x": escapes the workspace`; got != want {
		t.Errorf("CleanPath(%q) error = %q, want %q", "../x", got, want)
	}
}

func TestHasPrefixComponents(t *testing.T) {
	tests := []struct {
		clean, prefix string
		want          bool
	}{
		{".patchd", ".patchd", true},
		{".patchd/token", ".patchd", true},
		{".PATCHD/token", ".patchd", true},
		{".patchdx/token", ".patchd", false},
		{"x/.patchd/token", ".patchd", false},
		{"var/state/queue/1", "var/state", true},
		{"var/statex/1", "var/state", false},
		{"var", "var/state", false},
	}
	for _, tt := range tests {
		if got := hasPrefixComponents(tt.clean, tt.prefix); got != tt.want {
			t.Errorf("hasPrefixComponents(%q, %q) = %v, want %v", tt.clean, tt.prefix, got, tt.want)
		}
	}
}

func TestTempName(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, base := range []string{"app.py", long} {
		got := tempName(base)
		if !strings.HasPrefix(got, ".") || !strings.Contains(got, tempMarker) {
			t.Errorf("tempName(%q) = %q, want .<base>%s<random>", base, got, tempMarker)
		}
		if len(got) > 255 {
			t.Errorf("tempName(%d bytes) has %d bytes, want at most 255", len(base), len(got))
		}
		if !utf8.ValidString(got) || !strings.HasPrefix(got, "."+base[:6]) {
			t.Errorf("tempName(%d bytes) = %q, want valid UTF-8 starting with the base", len(base), got)
		}
	}
	if a, b := tempName("x"), tempName("x"); a == b {
		t.Errorf("tempName(%q) twice = %q, %q, want different names", "x", a, b)
	}
}

// FuzzCleanPath checks the invariants every caller relies on: an accepted
// path is relative, stays inside, never names git internals, and is a fixed
// point of CleanPath.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"src/app.py", "./src/app.py", "src//app.py", "a/../b", "../x",
		"a/../../x", "/etc/passwd", `C:\x`, `\x`, ".git/config", ".GIT/config",
		".g\u200cit/x", "./C:x", "x/", ".", "", "a\x00b", ".gitignore",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := CleanPath(p)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Path != p || pe.Reason == "" {
				t.Fatalf("CleanPath(%q) error = %#v, want a *PathError naming the path", p, err)
			}
			return
		}
		if got == "" || path.IsAbs(got) || got[0] == '\\' || hasDriveLetter(got) {
			t.Fatalf("CleanPath(%q) = %q, want a non-empty relative path", p, got)
		}
		if strings.ContainsAny(got, "\\\x00") {
			t.Fatalf("CleanPath(%q) = %q, contains a backslash or NUL", p, got)
		}
		for c := range strings.SplitSeq(got, "/") {
			if c == ".." || c == "." || c == "" {
				t.Fatalf("CleanPath(%q) = %q, has component %q", p, got, c)
			}
			if sameName(c, ".git") || strings.EqualFold(c, ".git") {
				t.Fatalf("CleanPath(%q) = %q, names git internals", p, got)
			}
		}
		again, err := CleanPath(got)
		if err != nil || again != got {
			t.Fatalf("CleanPath(%q) = %q, %v, want %q, nil (not stable)", got, again, err, got)
		}
	})
}
