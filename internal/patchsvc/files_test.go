package patchsvc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/workspace"
	"github.com/patchd/patchd/internal/workspace/workspacetest"
)

// filesService is a Service over a workspace of these files (and the
// state directory .patchd protected), with no store or worker: reading
// needs neither.
func filesService(t *testing.T, files map[string]string) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := workspace.OpenProtected(dir, []workspace.Protected{{Path: filepath.Join(dir, ".patchd"), What: "patchd's state directory"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return New(Options{Workspace: ws, Private: []Private{{Path: filepath.Join(dir, ".patchd"), Name: "<state dir>"}}}), dir
}

// numbered is lines from..to of "line N\n" as read_file shows them.
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%6d\tline %d\n", i, i)
	}
	return b.String()
}

func lines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// TestReadFile: ranges, the end of the file, no final newline, CRLF, the
// caps with a note naming the start_line that reads on, binary files, and
// the field named by a bad range.
func TestReadFile(t *testing.T) {
	long := strings.Repeat("x", api.MaxReadBytes+100)
	svc, _ := filesService(t, map[string]string{
		"ten.txt":     lines(10),
		"big.txt":     lines(5000),
		"wide.txt":    strings.Repeat(strings.Repeat("y", 99)+"\n", 1000), // 100 KB in 1000 lines
		"long.txt":    "short\n" + long + "\nafter\n",
		"longfirst":   long + "\n",
		"nonl.txt":    "a\nb",
		"crlf.txt":    "a\r\nb\r\n",
		"empty.txt":   "",
		"bin.dat":     "text\x00more\n",
		"latebin.dat": lines(3000) + "\x00",
		"src/app.py":  "print('hi')\n",
	})
	ctx := context.Background()
	tests := []struct {
		name       string
		req        api.ReadFileRequest
		start, end int
		total      int
		text       string
		truncated  bool
		note       string
	}{
		{name: "whole", req: api.ReadFileRequest{Path: "ten.txt"}, start: 1, end: 10, total: 10, text: numbered(1, 10)},
		{name: "range", req: api.ReadFileRequest{Path: "ten.txt", StartLine: 3, EndLine: 5}, start: 3, end: 5, total: 10, text: numbered(3, 5)},
		{name: "from", req: api.ReadFileRequest{Path: "./ten.txt", StartLine: 9}, start: 9, end: 10, total: 10, text: numbered(9, 10)},
		{name: "end past the file", req: api.ReadFileRequest{Path: "ten.txt", StartLine: 10, EndLine: 500}, start: 10, end: 10, total: 10, text: numbered(10, 10)},
		{name: "one line", req: api.ReadFileRequest{Path: "ten.txt", StartLine: 4, EndLine: 4}, start: 4, end: 4, total: 10, text: numbered(4, 4)},
		{name: "no final newline", req: api.ReadFileRequest{Path: "nonl.txt"}, start: 1, end: 2, total: 2, text: "     1\ta\n     2\tb"},
		{name: "crlf", req: api.ReadFileRequest{Path: "crlf.txt"}, start: 1, end: 2, total: 2, text: "     1\ta\r\n     2\tb\r\n"},
		{name: "empty", req: api.ReadFileRequest{Path: "empty.txt"}, start: 1, end: 0, total: 0, text: ""},
		{name: "line cap", req: api.ReadFileRequest{Path: "big.txt"}, start: 1, end: 2000, total: 5000, text: numbered(1, 2000), truncated: true, note: "start_line=2001"},
		{name: "line cap later", req: api.ReadFileRequest{Path: "big.txt", StartLine: 4001, EndLine: 9000}, start: 4001, end: 5000, total: 5000, text: numbered(4001, 5000)},
		{name: "range within cap", req: api.ReadFileRequest{Path: "big.txt", StartLine: 2, EndLine: 2001}, start: 2, end: 2001, total: 5000, text: numbered(2, 2001)},
		{name: "range over cap", req: api.ReadFileRequest{Path: "big.txt", StartLine: 2, EndLine: 2002}, start: 2, end: 2001, total: 5000, text: numbered(2, 2001), truncated: true, note: "start_line=2002"},
		{name: "byte cap at a line", req: api.ReadFileRequest{Path: "long.txt"}, start: 1, end: 1, total: 3, text: "     1\tshort\n", truncated: true, note: "start_line=2"},
		{name: "first line over the cap", req: api.ReadFileRequest{Path: "long.txt", StartLine: 2}, start: 2, end: 2, total: 3,
			text: "     2\t" + long[:api.MaxReadBytes-8], truncated: true, note: "line 2 is longer than one answer holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svc.ReadFile(ctx, tt.req)
			if err != nil {
				t.Fatalf("ReadFile(%+v) = %v", tt.req, err)
			}
			if got.StartLine != tt.start || got.EndLine != tt.end || got.TotalLines != tt.total || got.Truncated != tt.truncated {
				t.Errorf("ReadFile(%+v) = lines %d-%d of %d, truncated %v; want %d-%d of %d, %v (note %q)",
					tt.req, got.StartLine, got.EndLine, got.TotalLines, got.Truncated, tt.start, tt.end, tt.total, tt.truncated, got.Note)
			}
			if got.Text != tt.text {
				t.Errorf("ReadFile(%+v).Text = %.200q (%d bytes), want %.200q (%d bytes)", tt.req, got.Text, len(got.Text), tt.text, len(tt.text))
			}
			if !strings.Contains(got.Note, tt.note) || (tt.note == "") != (got.Note == "") {
				t.Errorf("ReadFile(%+v).Note = %q, want one containing %q", tt.req, got.Note, tt.note)
			}
			if got.Path != strings.TrimPrefix(tt.req.Path, "./") {
				t.Errorf("ReadFile(%+v).Path = %q", tt.req, got.Path)
			}
		})
	}

	// The byte cap: wide.txt's 1000 lines of 100 bytes, each shown with
	// its prefix (8 bytes as JSON: six columns and \t) and a newline JSON
	// writes as \n: 109 bytes a line.
	got, err := svc.ReadFile(ctx, api.ReadFileRequest{Path: "wide.txt"})
	if err != nil || !got.Truncated || got.EndLine != api.MaxReadBytes/109 || jsonLen([]byte(got.Text)) > api.MaxReadBytes {
		t.Errorf("ReadFile(wide.txt) = lines %d-%d, truncated %v, %d bytes as JSON, %v; want lines 1-%d truncated within %d bytes",
			got.StartLine, got.EndLine, got.Truncated, jsonLen([]byte(got.Text)), err, api.MaxReadBytes/109, api.MaxReadBytes)
	}

	refusals := []struct {
		name        string
		req         api.ReadFileRequest
		kind        api.Kind
		code, field string
		want        string
	}{
		{"binary", api.ReadFileRequest{Path: "bin.dat"}, api.KindUnprocessable, api.CodeFileBinary, "path", "binary (a NUL byte on line 1)"},
		{"binary past the lines shown", api.ReadFileRequest{Path: "latebin.dat", EndLine: 3}, api.KindUnprocessable, api.CodeFileBinary, "path", "line 3001"},
		{"missing", api.ReadFileRequest{Path: "nope.txt"}, api.KindNotFound, api.CodeFileNotFound, "path", `path "nope.txt": does not exist`},
		{"missing dir", api.ReadFileRequest{Path: "no/such/file"}, api.KindNotFound, api.CodeFileNotFound, "path", "does not exist"},
		{"negative start", api.ReadFileRequest{Path: "ten.txt", StartLine: -1}, api.KindInvalid, api.CodeFieldInvalid, "start_line", "start_line must be 1 or more"},
		{"negative end", api.ReadFileRequest{Path: "ten.txt", EndLine: -2}, api.KindInvalid, api.CodeFieldInvalid, "end_line", "end_line must be 1 or more"},
		{"end before start", api.ReadFileRequest{Path: "ten.txt", StartLine: 5, EndLine: 4}, api.KindInvalid, api.CodeFieldInvalid, "end_line", "end_line 4 is before start_line 5"},
		{"start past the end", api.ReadFileRequest{Path: "ten.txt", StartLine: 11}, api.KindInvalid, api.CodeFieldInvalid, "start_line", "start_line 11 is past the end of the file, which has 10 lines"},
		{"start past an empty file", api.ReadFileRequest{Path: "empty.txt", StartLine: 2}, api.KindInvalid, api.CodeFieldInvalid, "start_line", "empty"},
		{"directory", api.ReadFileRequest{Path: "src"}, api.KindInvalid, workspace.CodePathNotRegular, "path", "is a directory"},
	}
	for _, tt := range refusals {
		_, err := svc.ReadFile(ctx, tt.req)
		wantError(t, "ReadFile "+tt.name, err, tt.kind, tt.code, tt.field, tt.want)
	}
}

// TestReadFileTooLarge: a file over MaxReadFileBytes is refused by its
// size, before it is read.
func TestReadFileTooLarge(t *testing.T) {
	svc, dir := filesService(t, nil)
	f, err := os.Create(filepath.Join(dir, "huge.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(api.MaxReadFileBytes + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	_, err = svc.ReadFile(context.Background(), api.ReadFileRequest{Path: "huge.log"})
	wantError(t, "ReadFile of a huge file", err, api.KindUnprocessable, api.CodeFileTooLarge, "path", "more than the 67108864 bytes read_file reads")
}

// TestFilesHostilePaths: every hostile path the workspace resolver's tests
// use (workspacetest.Cases) is refused by ReadFile and ListFiles with the
// resolver's own code, Kind invalid, field path, and no machine path in
// the message; no protected content is ever answered.
func TestFilesHostilePaths(t *testing.T) {
	tr := workspacetest.Build(t)
	ws, err := workspace.OpenProtected(tr.Dir, []workspace.Protected{
		{Path: tr.StateDir, What: "patchd's state directory"},
		{Path: tr.Config, What: "patchd's config file"},
		{Path: tr.OutsideConfig, What: "patchd's other config file"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	svc := New(Options{Workspace: ws, Private: []Private{{Path: tr.StateDir, Name: "<state dir>"}}})
	ctx := context.Background()
	markers := []string{workspacetest.Secret, workspacetest.GitConfig, workspacetest.StateToken, workspacetest.ConfigText}
	for _, tt := range workspacetest.Cases(tr) {
		t.Run(tt.Name, func(t *testing.T) {
			check := func(op string, err error, code string) {
				t.Helper()
				e := api.ErrorOf(err)
				switch {
				case err == nil:
					t.Errorf("%s(%q) = nil error, want code %s", op, tt.Path, code)
				case e.Code != code || e.Kind != api.KindInvalid || e.Field != "path":
					t.Errorf("%s(%q) = {Kind %s, Code %s, Field %q, %q}, want {invalid, %s, path}", op, tt.Path, e.Kind, e.Code, e.Field, e.Message, code)
				case !strings.Contains(tt.Path, tr.Base) && strings.Contains(e.Message, tr.Base):
					t.Errorf("%s(%q) = %q, which names the machine's path", op, tt.Path, e.Message)
				}
			}
			ft, err := svc.ReadFile(ctx, api.ReadFileRequest{Path: tt.Path})
			check("ReadFile", err, tt.Code)
			for _, m := range markers {
				if strings.Contains(ft.Text, strings.TrimSpace(m)) {
					t.Errorf("ReadFile(%q) answered protected content %q", tt.Path, ft.Text)
				}
			}
			fl, err := svc.ListFiles(ctx, api.ListFilesRequest{Path: tt.Path})
			if tt.FileOnly {
				return
			}
			code := tt.Code
			if tt.DirCode != "" {
				code = tt.DirCode
			}
			check("ListFiles", err, code)
			if len(fl.Files) > 0 {
				t.Errorf("ListFiles(%q) = %q, want nothing", tt.Path, fl.Files)
			}
		})
	}
	// The root's listing shows none of them either.
	fl, err := svc.ListFiles(ctx, api.ListFilesRequest{})
	want := []string{"a.txt", "dir/b.txt", "src/app.py"}
	if err != nil || !slices.Equal(fl.Files, want) {
		t.Errorf("ListFiles(root) = %q, %v, want %q (no link, no .git, no patchd file, nothing outside)", fl.Files, err, want)
	}
}
