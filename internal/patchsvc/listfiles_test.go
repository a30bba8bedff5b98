package patchsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/workspace"
)

// TestListFiles: .gitignore at each level with git's rules (comments,
// negation, a trailing slash, anchoring, *, ?, **), globs with **, a
// path, the byte order, and what is never listed.
func TestListFiles(t *testing.T) {
	svc, dir := filesService(t, map[string]string{
		".gitignore": "# build output\n*.log\n!keep.log\n/build/\nnode_modules/\ntmp?/\ndocs/**/*.tmp\nsecret\\ \n\\#hash\n" +
			"/only-root.txt\n**/cache\nout/**\n",
		"a.go":                 "",
		"a-b.go":               "",
		"a0.go":                "",
		"keep.log":             "",
		"debug.log":            "",
		"build/x.go":           "",
		"sub/build/y.go":       "", // /build/ is anchored: not this one
		"node_modules/m/i.js":  "",
		"sub/node_modules/j":   "", // node_modules/ is not anchored
		"tmp1/t":               "",
		"tmpdir/t":             "",
		"docs/a/b/c.tmp":       "",
		"docs/c.tmp":           "",
		"docs/guide.md":        "",
		"secret ":              "",
		"#hash":                "",
		"only-root.txt":        "",
		"sub/only-root.txt":    "",
		"sub/cache/c1":         "",
		"out/o1":               "",
		"src/.gitignore":       "*.gen.go\n!keep.gen.go\n/local.go\n",
		"src/main.go":          "",
		"src/x.gen.go":         "",
		"src/keep.gen.go":      "",
		"src/local.go":         "",
		"src/pkg/local.go":     "", // /local.go is anchored to src/
		"src/pkg/deep/z.go":    "",
		"src/pkg/deep/z.log":   "",
		"src/pkg/deep/notes.t": "",
		"src/pkg/.gitignore":   "!*.log\n", // negates the root's *.log below it
		".patchd/token":        "secret",
		".git/config":          "x",
		"sub/.GIT/config":      "x",
		"dir\\name/x.go":       "", // a name no payload path can spell
	})
	if err := os.Symlink("src", filepath.Join(dir, "srclink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "src", "pkg", "self")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		req  api.ListFilesRequest
		want []string
	}{
		{"root", api.ListFilesRequest{}, []string{
			".gitignore", "a-b.go", "a.go", "a0.go", "docs/guide.md", "keep.log",
			"src/.gitignore", "src/keep.gen.go", "src/main.go", "src/pkg/.gitignore", "src/pkg/deep/notes.t",
			"src/pkg/deep/z.go", "src/pkg/deep/z.log", "src/pkg/local.go",
			"sub/build/y.go", "sub/only-root.txt", "tmpdir/t",
		}},
		{"glob **", api.ListFilesRequest{Glob: "src/**/*.go"}, []string{"src/keep.gen.go", "src/main.go", "src/pkg/deep/z.go", "src/pkg/local.go"}},
		{"glob top level only", api.ListFilesRequest{Glob: "*.go"}, []string{"a-b.go", "a.go", "a0.go"}},
		{"glob any depth", api.ListFilesRequest{Glob: "**/*.log"}, []string{"keep.log", "src/pkg/deep/z.log"}},
		{"glob one level", api.ListFilesRequest{Glob: "*/*.md"}, []string{"docs/guide.md"}},
		{"glob class", api.ListFilesRequest{Glob: "a[0-9].go"}, []string{"a0.go"}},
		{"path", api.ListFilesRequest{Path: "src/pkg"}, []string{"src/pkg/.gitignore", "src/pkg/deep/notes.t", "src/pkg/deep/z.go", "src/pkg/deep/z.log", "src/pkg/local.go"}},
		{"path with slash and glob", api.ListFilesRequest{Path: "src/", Glob: "*.go"}, []string{"src/keep.gen.go", "src/main.go"}},
		{"path through a link", api.ListFilesRequest{Path: "srclink/pkg/deep", Glob: "*.go"}, []string{"src/pkg/deep/z.go"}},
		{"ignored path asked for", api.ListFilesRequest{Path: "build"}, []string{"build/x.go"}},
		{"root as dot", api.ListFilesRequest{Path: ".", Glob: "docs/**"}, []string{"docs/guide.md"}},
		{"nothing", api.ListFilesRequest{Glob: "**/*.rs"}, []string{}},
		{"limit", api.ListFilesRequest{Limit: 2}, []string{".gitignore", "a-b.go"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svc.ListFiles(ctx, tt.req)
			if err != nil {
				t.Fatalf("ListFiles(%+v) = %v", tt.req, err)
			}
			if !slices.Equal(got.Files, tt.want) {
				t.Errorf("ListFiles(%+v) =\n %q\nwant\n %q", tt.req, got.Files, tt.want)
			}
			if limited := tt.req.Limit > 0 && len(tt.want) == tt.req.Limit; got.Truncated != limited {
				t.Errorf("ListFiles(%+v).Truncated = %v (note %q), want %v", tt.req, got.Truncated, got.Note, limited)
			}
		})
	}

	refusals := []struct {
		name        string
		req         api.ListFilesRequest
		kind        api.Kind
		code, field string
		want        string
	}{
		{"negative limit", api.ListFilesRequest{Limit: -1}, api.KindInvalid, api.CodeFieldInvalid, "limit", "limit must be a number from 1 to 1000"},
		{"limit over the cap", api.ListFilesRequest{Limit: 1001}, api.KindInvalid, api.CodeFieldInvalid, "limit", "not 1001"},
		{"bad glob", api.ListFilesRequest{Glob: "src/[a"}, api.KindInvalid, api.CodeFieldInvalid, "glob", "syntax error in pattern"},
		{"absolute glob", api.ListFilesRequest{Glob: "/etc/*"}, api.KindInvalid, api.CodeFieldInvalid, "glob", "absolute"},
		{"glob climbing", api.ListFilesRequest{Glob: "../*"}, api.KindInvalid, api.CodeFieldInvalid, "glob", `".."`},
		{"glob with a ** inside a segment", api.ListFilesRequest{Glob: "src/a**b"}, api.KindInvalid, api.CodeFieldInvalid, "glob", "whole segment"},
		{"long glob", api.ListFilesRequest{Glob: strings.Repeat("a", api.MaxGlobLen+1)}, api.KindInvalid, api.CodeFieldInvalid, "glob", "more than the 1024 allowed"},
		{"many segments", api.ListFilesRequest{Glob: strings.Repeat("a/", 70) + "b"}, api.KindInvalid, api.CodeFieldInvalid, "glob", "more than 64 segments"},
		{"missing", api.ListFilesRequest{Path: "nope"}, api.KindNotFound, api.CodeFileNotFound, "path", `path "nope": does not exist`},
		{"a file", api.ListFilesRequest{Path: "a.go"}, api.KindInvalid, workspace.CodeNotDirectory, "path", "is a file, not a directory"},
		{"state dir", api.ListFilesRequest{Path: ".patchd"}, api.KindInvalid, api.CodePathProtected, "path", "patchd's state directory"},
		{"nested git", api.ListFilesRequest{Path: "sub/.GIT"}, api.KindInvalid, api.CodePathGit, "path", "git internals"},
		{"link out", api.ListFilesRequest{Path: "passwd"}, api.KindInvalid, api.CodePathOutside, "path", "leads outside"},
	}
	for _, tt := range refusals {
		_, err := svc.ListFiles(ctx, tt.req)
		wantError(t, "ListFiles "+tt.name, err, tt.kind, tt.code, tt.field, tt.want)
	}
}

// TestListFilesCaps: past the cap the answer is the first paths in order,
// truncated, with a note; the walk stops there instead of reading the
// whole tree, and a path longer than the byte cap allows stops it too.
func TestListFilesCaps(t *testing.T) {
	files := map[string]string{}
	for i := range 1500 {
		files[fmt.Sprintf("d%02d/f%04d", i/100, i)] = ""
	}
	svc, _ := filesService(t, files)
	got, err := svc.ListFiles(context.Background(), api.ListFilesRequest{})
	if err != nil || len(got.Files) != api.MaxListFilesLimit || !got.Truncated || !strings.Contains(got.Note, "narrower glob") {
		t.Fatalf("ListFiles of 1500 files = %d files, truncated %v, note %q, %v; want %d, truncated, a note", len(got.Files), got.Truncated, got.Note, err, api.MaxListFilesLimit)
	}
	if !slices.IsSorted(got.Files) || got.Files[0] != "d00/f0000" || got.Files[999] != "d09/f0999" {
		t.Errorf("ListFiles = %q ... %q, want the first 1000 in order", got.Files[0], got.Files[len(got.Files)-1])
	}
	// The walk stops at the cap: it looked at the 10 directories and
	// 1000 files answered, d10 and its first file, and nothing after.
	l, err := svc.list(context.Background(), api.ListFilesRequest{})
	if err != nil || l.examined != 1012 {
		t.Errorf("the listing looked at %d entries (%v), want 1012 of the 1515", l.examined, err)
	}

	// Byte cap: 100 paths of 1000 bytes are over MaxListBytes.
	long := map[string]string{}
	for i := range 100 {
		long[fmt.Sprintf("%03d%s", i, strings.Repeat("n", 200))+"/"+strings.Repeat("m", 200)+"/"+strings.Repeat("o", 200)+"/"+strings.Repeat("p", 200)+"/"+strings.Repeat("q", 190)] = ""
	}
	svc, _ = filesService(t, long)
	got, err = svc.ListFiles(context.Background(), api.ListFilesRequest{})
	if n := len(got.Files); err != nil || !got.Truncated || n == 0 || n*1000 > api.MaxListBytes {
		t.Errorf("ListFiles of 100 long paths = %d files, truncated %v, %v; want fewer than %d, truncated", n, got.Truncated, err, api.MaxListBytes/1000)
	}
}

// TestListFilesHostileTree: symbolic link loops, a deep tree and
// .gitignore files built to be expensive neither hang nor fail the
// listing; an oversized .gitignore is not used, and the note says so.
func TestListFilesHostileTree(t *testing.T) {
	files := map[string]string{
		// Each pattern is many stars against long names; and many **.
		".gitignore":                      strings.Repeat("*a*a*a*a*a*a*a*a*a*a*a*a*b\n", 900) + strings.Repeat("**/**/x/**/**/y/**/z\n", 5) + "[\n" + strings.Repeat("q", 600) + "\n",
		"big/.gitignore":                  strings.Repeat("#", 70<<10) + "\n*\n",
		"big/seen.txt":                    "",
		strings.Repeat("a", 200) + ".txt": "",
	}
	deep := strings.Repeat("d/", 250) + "leaf.txt"
	files[deep] = ""
	files[strings.Repeat("e/", 900)+"leaf.txt"] = "" // 900 levels: not entered past 256
	svc, dir := filesService(t, files)
	for _, l := range [][2]string{{"loop", "loop"}, {"l1", "l2"}, {"l2", "l1"}, {"up", ".."}, {"self", "."}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	got, err := svc.ListFiles(context.Background(), api.ListFilesRequest{})
	if err != nil {
		t.Fatalf("ListFiles = %v", err)
	}
	t.Logf("hostile tree listed in %s", time.Since(start))
	want := []string{".gitignore", strings.Repeat("a", 200) + ".txt", "big/.gitignore", "big/seen.txt", deep}
	if !slices.Equal(got.Files, want) {
		t.Errorf("ListFiles = %q, want %q", got.Files, want)
	}
	for _, note := range []string{"big/.gitignore is over 65536 bytes and was not used", "2 lines of .gitignore were not used",
		strings.Repeat("e/", 256)[:511] + " is 256 levels deep and was not entered"} {
		if !strings.Contains(got.Note, note) {
			t.Errorf("ListFiles note = %q, want it to say %q", got.Note, note)
		}
	}
	if !got.Truncated {
		t.Errorf("ListFiles truncated = false, want true: a directory was not entered")
	}
}

// TestListFilesRuleBound: the .gitignore rules in effect at once are
// bounded; a file that would pass the bound is not used, and the note says
// so.
func TestListFilesRuleBound(t *testing.T) {
	var rules strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&rules, "zz%d\n", i)
	}
	files := map[string]string{}
	dir := ""
	for i := range 10 {
		dir += fmt.Sprintf("d%d/", i)
		files[dir+".gitignore"] = rules.String()
	}
	files[dir+"last/.gitignore"] = "*.secret\n"
	files[dir+"last/x.secret"] = ""
	svc, _ := filesService(t, files)
	got, err := svc.ListFiles(context.Background(), api.ListFilesRequest{Glob: "**/x.secret"})
	if err != nil || len(got.Files) != 1 || !strings.Contains(got.Note, "last/.gitignore was not used: with the .gitignore files above it, it makes more than 10000 rules") {
		t.Errorf("ListFiles = %q, note %q, %v; want x.secret listed and a note on the unused .gitignore", got.Files, got.Note, err)
	}
}

// BenchmarkListFiles lists a tree of 10,000 files in 100 directories with
// a .gitignore of 20 rules, first 1000 (the cap) and then through a glob
// that walks all of it.
func BenchmarkListFiles(b *testing.B) {
	dir := b.TempDir()
	ignore := "*.log\n/build/\nnode_modules/\n**/tmp\n!keep.log\n" + strings.Repeat("*.bak\n", 15)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte(ignore), 0o644)
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", d))
		os.MkdirAll(sub, 0o755)
		for f := range 100 {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.go", f)), nil, 0o644)
		}
	}
	ws, err := workspace.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	svc := New(Options{Workspace: ws})
	for _, req := range []api.ListFilesRequest{{}, {Glob: "**/file099.go"}} {
		b.Run(fmt.Sprintf("glob=%q", req.Glob), func(b *testing.B) {
			for b.Loop() {
				if _, err := svc.ListFiles(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestListFilesUnreadableDir: a directory that cannot be opened is not
// listed, and the note names it (not as root, who opens any).
func TestListFilesUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root opens any directory")
	}
	svc, dir := filesService(t, map[string]string{"a/x": "", "b/y": "", "c/z": ""})
	os.Chmod(filepath.Join(dir, "b"), 0)
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "b"), 0o755) })
	got, err := svc.ListFiles(context.Background(), api.ListFilesRequest{})
	if err != nil || !slices.Equal(got.Files, []string{"a/x", "c/z"}) || !strings.Contains(got.Note, "b could not be listed: list b: permission denied") {
		t.Errorf("ListFiles = %q, note %q, %v; want a/x and c/z, and a note on b", got.Files, got.Note, err)
	}
}
