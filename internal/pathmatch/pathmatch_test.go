package pathmatch

import (
	"strings"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		glob string
		path string
		want bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"src/**/*.go", "src/a.go", true},
		{"src/**/*.go", "src/x/y/a.go", true},
		{"src/**/*.go", "lib/src/a.go", false},
		{"src/**", "src/a/b", true},
		{"src/**", "src", true}, // "**" matches zero segments
		{"cmd/*/main.go", "cmd/patchd/main.go", true},
		{"cmd/*/main.go", "cmd/a/b/main.go", false},
		{"a/**/b/**/c", "a/b/c", true},
		{"a/**/b/**/c", "a/x/b/y/z/c", true},
		{"a/**/b/**/c", "a/x/c", false},
		{"./docs//*.md", "docs/x.md", true},
		{"?.txt", "a.txt", true},
		{"[a-c]*", "b", true},
		{"[a-c]*", "d", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"**/**/**", "x", true},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.glob)
		if err != nil {
			t.Fatalf("CompileGlob(%q) = %v", tt.glob, err)
		}
		if got := g.Match(tt.path); got != tt.want {
			t.Errorf("Glob(%q).Match(%q) = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"", "/abs", "../x", "a/../b", "[", "a**b", "./", strings.Repeat("a/", 64) + "b"} {
		if _, err := CompileGlob(bad); err == nil {
			t.Errorf("CompileGlob(%q) = nil error, want a refusal", bad)
		}
	}
}

func TestMayMatchUnder(t *testing.T) {
	tests := []struct {
		glob, dir string
		want      bool
	}{
		{"src/**/*.go", "src", true},
		{"src/**/*.go", "src/a/b", true},
		{"src/**/*.go", "lib", false},
		{"*.go", "cmd", false},
		{"cmd/*/main.go", "cmd/x", true},
		{"cmd/*/main.go", "cmd/x/y", false},
		{"**/*.go", "any/where", true},
		{"docs/*.md", "docs", true},
		{"docs/*.md", "", true},
	}
	for _, tt := range tests {
		g, _ := CompileGlob(tt.glob)
		if got := g.MayMatchUnder(tt.dir); got != tt.want {
			t.Errorf("Glob(%q).MayMatchUnder(%q) = %v, want %v", tt.glob, tt.dir, got, tt.want)
		}
	}
}

// TestGlobCost: a glob built to make a backtracking matcher explode
// against a deep path costs O(segments·depth) here.
func TestGlobCost(t *testing.T) {
	g, err := CompileGlob(strings.Repeat("**/a*a*a*a*a*a*b/", 30) + "c")
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat(strings.Repeat("a", 100)+"/", 1000) + "d"
	start := time.Now()
	for range 10 {
		if g.Match(deep) || !g.MayMatchUnder(strings.TrimSuffix(deep, "/d")) {
			t.Fatalf("Match(deep) = true or MayMatchUnder false")
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("10 matches of a hostile glob took %s", d)
	}
}

func TestIgnore(t *testing.T) {
	text := strings.Join([]string{
		"# a comment",
		"",
		"*.log",
		"!keep.log",
		"/build/",
		"node_modules/",
		"tmp?",
		"docs/**/*.tmp",
		"**/cache",
		"out/**",
		`\#literal`,
		`\!bang`,
		`trailing\ `,
		"spaces   ",
		"a/b",
		"[",
	}, "\n")
	ig := ParseIgnore("", []byte(text))
	if ig.Dropped != 1 {
		t.Errorf("Dropped = %d, want 1 (the bad pattern)", ig.Dropped)
	}
	tests := []struct {
		path  string
		dir   bool
		want  bool
		known bool
	}{
		{"x.log", false, true, true},
		{"deep/x.log", false, true, true},
		{"keep.log", false, false, true},
		{"sub/keep.log", false, false, true},
		{"build", true, true, true},
		{"build", false, false, false}, // a file named build: the rule is for directories
		{"sub/build", true, false, false},
		{"node_modules", true, true, true},
		{"a/node_modules", true, true, true},
		{"tmp1", false, true, true},
		{"tmp12", false, false, false},
		{"docs/x.tmp", false, true, true},
		{"docs/a/b/x.tmp", false, true, true},
		{"cache", true, true, true},
		{"a/b/cache", false, true, true},
		{"out", true, false, false}, // out/** is what is inside out
		{"out/x", false, true, true},
		{"out/x/y", false, true, true},
		{"#literal", false, true, true},
		{"!bang", false, true, true},
		{"trailing ", false, true, true},
		{"spaces", false, true, true},
		{"a/b", false, true, true},
		{"x/a/b", false, false, false},
		{"main.go", false, false, false},
	}
	for _, tt := range tests {
		known, got := ig.Match(tt.path, tt.dir)
		if got != tt.want || known != tt.known {
			t.Errorf("Match(%q, dir %v) = %v, %v; want %v, %v", tt.path, tt.dir, known, got, tt.known, tt.want)
		}
	}
}

// TestIgnoredStack: the deepest .gitignore with a matching rule decides.
func TestIgnoredStack(t *testing.T) {
	stack := []*Ignore{
		ParseIgnore("", []byte("*.gen.go\n/local\n")),
		ParseIgnore("src", []byte("!keep.gen.go\nlocal\n")),
	}
	tests := []struct {
		path string
		want bool
	}{
		{"a.gen.go", true},
		{"src/a.gen.go", true},
		{"src/keep.gen.go", false},
		{"keep.gen.go", true},
		{"local", true},
		{"src/local", true},
		{"src/x/local", true},
		{"lib/local", false},
	}
	for _, tt := range tests {
		if got := Ignored(stack, tt.path, false); got != tt.want {
			t.Errorf("Ignored(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestIgnoreBounds(t *testing.T) {
	text := strings.Repeat("x\n", MaxIgnoreRules+10) + strings.Repeat("y", MaxRuleLen+1) + "\n"
	ig := ParseIgnore("", []byte(text))
	if len(ig.rules) != MaxIgnoreRules || ig.Dropped != 11 {
		t.Errorf("ParseIgnore of %d rules = %d rules, %d dropped; want %d, 11", MaxIgnoreRules+11, len(ig.rules), ig.Dropped, MaxIgnoreRules)
	}
}

func FuzzIgnore(f *testing.F) {
	f.Add("*.log\n!keep.log\n/build/\n**/x/**\n", "a/b/keep.log")
	f.Add("[\n\\\n!\n/\n**\n", "x")
	f.Fuzz(func(t *testing.T, text, p string) {
		ig := ParseIgnore("", []byte(text))
		ig.Match(p, false)
		ig.Match(p, true)
		if g, err := CompileGlob(text); err == nil {
			g.Match(p)
			g.MayMatchUnder(p)
		}
	})
}
