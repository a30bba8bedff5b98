package patch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []byte
		want     string
	}{
		{
			name: "equal",
			old:  []byte("a\nb\n"),
			new:  []byte("a\nb\n"),
			want: "",
		},
		{
			name: "create empty file",
			old:  nil,
			new:  []byte{},
			want: "",
		},
		{
			name: "one line changed",
			old:  []byte("a\nb\nc\n"),
			new:  []byte("a\nB\nc\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n",
		},
		{
			name: "single line hunk ranges",
			old:  []byte("x\n"),
			new:  []byte("y\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-x\n+y\n",
		},
		{
			name: "no newline at end of new",
			old:  []byte("a\nb\nc\n"),
			new:  []byte("a\nB\nc"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n a\n-b\n-c\n+B\n+c\n\\ No newline at end of file\n",
		},
		{
			name: "newline added at end",
			old:  []byte("a\nb"),
			new:  []byte("a\nb\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
		},
		{
			name: "unchanged last line without newline",
			old:  []byte("a\nb"),
			new:  []byte("A\nb"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n\\ No newline at end of file\n",
		},
		{
			name: "created",
			old:  nil,
			new:  []byte("a\nb\n"),
			want: "--- /dev/null\n+++ b/f.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n",
		},
		{
			name: "created from empty file",
			old:  []byte{},
			new:  []byte("a\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -0,0 +1 @@\n+a\n",
		},
		{
			name: "deleted",
			old:  []byte("a\nb\n"),
			new:  nil,
			want: "--- a/f.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n",
		},
		{
			name: "insertion in the middle",
			old:  lines(1, 10),
			new:  []byte(strings.Replace(string(lines(1, 10)), "5\n", "5\nnew\n", 1)),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -3,6 +3,7 @@\n 3\n 4\n 5\n+new\n 6\n 7\n 8\n",
		},
		{
			name: "pure deletion names the line before",
			old:  []byte("a\nb\n"),
			new:  []byte("a\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1 @@\n a\n-b\n",
		},
		{
			name: "changes 6 lines apart share a hunk",
			old:  lines(1, 20),
			new:  replaceLines(lines(1, 20), map[int]string{5: "five", 12: "twelve"}),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -2,14 +2,14 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n 11\n-12\n+twelve\n 13\n 14\n 15\n",
		},
		{
			name: "changes 7 lines apart get two hunks",
			old:  lines(1, 20),
			new:  replaceLines(lines(1, 20), map[int]string{5: "five", 13: "thirteen"}),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n@@ -10,7 +10,7 @@\n 10\n 11\n 12\n-13\n+thirteen\n 14\n 15\n 16\n",
		},
		{
			name: "crlf lines keep their carriage return",
			old:  []byte("a\r\nb\r\nc\r\n"),
			new:  []byte("a\r\nB\r\nc\r\n"),
			want: "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff("f.txt", tt.old, tt.new)
			if got != tt.want {
				t.Errorf("Diff(%q, %q) =\n%s\nwant\n%s", tt.old, tt.new, got, tt.want)
			}
			checkDiff(t, tt.old, tt.new, got)
		})
	}
}

func TestHeaderName(t *testing.T) {
	tests := []struct{ path, want string }{
		{"src/app.py", "a/src/app.py"},
		{"my file.txt", "a/my file.txt\t"},
		{"café.txt", "a/café.txt"},
		{`q"x.txt`, `"a/q\"x.txt"`},
		{"back\\slash", `"a/back\\slash"`},
		{"tab\tand space", `"a/tab\tand space"` + "\t"},
		{"nl\nx\x01", `"a/nl\nx\001"`},
	}
	for _, tt := range tests {
		if got := headerName("a/", tt.path); got != tt.want {
			t.Errorf("headerName(%q, %q) = %q, want %q", "a/", tt.path, got, tt.want)
		}
	}
}

// lines returns the lines "from\n" … "to\n".
func lines(from, to int) []byte {
	var b bytes.Buffer
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.Bytes()
}

// replaceLines replaces the 1-based numbered lines of b.
func replaceLines(b []byte, repl map[int]string) []byte {
	ls := strings.SplitAfter(string(b), "\n")
	for n, s := range repl {
		ls[n-1] = s + "\n"
	}
	return []byte(strings.Join(ls, ""))
}

// checkDiff applies diff to old with the in-test applier and expects new.
func checkDiff(t *testing.T, old, new []byte, diff string) {
	t.Helper()
	if bytes.Equal(old, new) {
		if diff != "" {
			t.Errorf("Diff(%q, %q) = %q, want \"\" for equal contents", old, new, diff)
		}
		return
	}
	got, err := applyUnified(diff, old)
	if err != nil {
		t.Fatalf("applying Diff(%q, %q):\n%s\nerror: %v", old, new, diff, err)
	}
	if !bytes.Equal(got, new) {
		t.Fatalf("applying Diff(%q, %q):\n%s\ngives %q, want %q", old, new, diff, got, new)
	}
}

// applyUnified is a strict applier for the diffs Diff writes: every context
// and removed line must match old at the position the header names, and the
// header counts must match the hunk body.
func applyUnified(diff string, old []byte) ([]byte, error) {
	rows := strings.SplitAfter(diff, "\n")
	if rows[len(rows)-1] != "" {
		return nil, errors.New("diff does not end with a newline")
	}
	rows = rows[:len(rows)-1]
	if len(rows) < 3 || !strings.HasPrefix(rows[0], "--- ") || !strings.HasPrefix(rows[1], "+++ ") {
		return nil, errors.New("missing --- / +++ headers")
	}
	oldLines := splitLines(old)
	var out []byte
	pos, newCount := 0, 0 // next old line; lines written so far
	prevEnd := 0
	for r := 2; r < len(rows); {
		oldStart, oldN, newStart, newN, err := parseHunkHeader(rows[r])
		if err != nil {
			return nil, fmt.Errorf("row %d: %v", r+1, err)
		}
		r++
		at := oldStart - 1
		if oldN == 0 {
			at = oldStart
		}
		if at < prevEnd || at > len(oldLines) {
			return nil, fmt.Errorf("hunk at old line %d out of order or range", oldStart)
		}
		for ; pos < at; pos++ {
			out = append(out, oldLines[pos]...)
			newCount++
		}
		wantNew := newStart - 1
		if newN == 0 {
			wantNew = newStart
		}
		if wantNew != newCount {
			return nil, fmt.Errorf("hunk new start %d, but %d lines written", newStart, newCount)
		}
		seenOld, seenNew := 0, 0
		for r < len(rows) && !strings.HasPrefix(rows[r], "@@ ") {
			row := rows[r]
			r++
			if len(row) < 2 {
				return nil, fmt.Errorf("row %d: empty hunk line %q", r, row)
			}
			kind, text := row[0], row[1:]
			if r < len(rows) && rows[r] == "\\ No newline at end of file\n" {
				text = strings.TrimSuffix(text, "\n")
				r++
			}
			switch kind {
			case ' ', '-':
				if pos >= len(oldLines) || string(oldLines[pos]) != text {
					return nil, fmt.Errorf("row %d: %q does not match old line %d", r, text, pos+1)
				}
				pos++
				seenOld++
				if kind == ' ' {
					out = append(out, text...)
					seenNew++
					newCount++
				}
			case '+':
				out = append(out, text...)
				seenNew++
				newCount++
			default:
				return nil, fmt.Errorf("row %d: bad hunk line %q", r, row)
			}
		}
		if seenOld != oldN || seenNew != newN {
			return nil, fmt.Errorf("hunk -%d,%d +%d,%d has %d old and %d new lines", oldStart, oldN, newStart, newN, seenOld, seenNew)
		}
		prevEnd = pos
	}
	for ; pos < len(oldLines); pos++ {
		out = append(out, oldLines[pos]...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func parseHunkHeader(row string) (oldStart, oldN, newStart, newN int, err error) {
	var o, n string
	if _, err := fmt.Sscanf(row, "@@ -%s +%s @@\n", &o, &n); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bad hunk header %q", row)
	}
	if row != "@@ -"+o+" +"+n+" @@\n" {
		return 0, 0, 0, 0, fmt.Errorf("bad hunk header %q", row)
	}
	parse := func(s string) (int, int, error) {
		a, b, found := strings.Cut(s, ",")
		start, err := strconv.Atoi(a)
		if err != nil {
			return 0, 0, err
		}
		if !found {
			return start, 1, nil
		}
		if b == "1" {
			return 0, 0, errors.New("count 1 written out")
		}
		count, err := strconv.Atoi(b)
		return start, count, err
	}
	if oldStart, oldN, err = parse(o); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bad old range in %q: %v", row, err)
	}
	if newStart, newN, err = parse(n); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bad new range in %q: %v", row, err)
	}
	return oldStart, oldN, newStart, newN, nil
}

// TestDiffSystemTools checks that the real tools accept Diff's output.
func TestDiffSystemTools(t *testing.T) {
	cases := []struct {
		name     string
		old, new []byte
		path     string // default sub/f.txt
	}{
		{"simple", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"), ""},
		{"no newline at end of new", lines(1, 9), bytes.TrimSuffix(lines(1, 9), []byte("\n")), ""},
		{"no newline at end of old", []byte("x\ny"), []byte("x\ny\nz\n"), ""},
		{"no newline at either end", []byte("x\ny"), []byte("x\nY"), ""},
		{"crlf", []byte("a\r\nb\r\nc\r\nd\r\n"), []byte("a\r\nB\r\nc\r\nd\r\ne\r\n"), ""},
		{"crlf without newline at end", []byte("a\r\nb\r\nc"), []byte("a\r\nb\r\nC"), ""},
		{"two hunks", lines(1, 40), replaceLines(lines(1, 40), map[int]string{3: "three", 30: "thirty"}), ""},
		{"insert at start", lines(1, 5), append([]byte("zero\n"), lines(1, 5)...), ""},
		{"delete at end", lines(1, 8), lines(1, 5), ""},
		{"emptied", lines(1, 3), []byte{}, ""},
		{"from empty", []byte{}, lines(1, 3), ""},
		{"created", nil, lines(1, 3), ""},
		{"deleted", lines(1, 3), nil, ""},
		{"shuffled", []byte("a\nb\nc\nd\ne\nf\ng\n"), []byte("g\nc\nb\nx\ne\na\n"), ""},
		{"space in name", lines(1, 3), lines(2, 4), "my dir/my file.txt"},
		{"quote in name", lines(1, 3), lines(2, 4), `q"x\y.txt`},
		{"utf-8 name", lines(1, 3), lines(2, 4), "café/ü.txt"},
	}
	tools := []struct {
		name string
		args []string
	}{
		{"patch", []string{"patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-s", "-i"}},
		{"git", []string{"git", "apply", "-p1", "--unsafe-paths", "--whitespace=nowarn"}},
	}
	for _, tool := range tools {
		t.Run(tool.name, func(t *testing.T) {
			if _, err := exec.LookPath(tool.args[0]); err != nil {
				t.Skipf("%s not installed", tool.args[0])
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					path := c.path
					if path == "" {
						path = "sub/f.txt"
					}
					dir := t.TempDir()
					file := filepath.Join(dir, filepath.FromSlash(path))
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if c.old != nil {
						if err := os.WriteFile(file, c.old, 0o644); err != nil {
							t.Fatal(err)
						}
					}
					diff := Diff(path, c.old, c.new)
					patchFile := filepath.Join(t.TempDir(), "p.diff")
					if err := os.WriteFile(patchFile, []byte(diff), 0o644); err != nil {
						t.Fatal(err)
					}
					cmd := exec.Command(tool.args[0], append(tool.args[1:], patchFile)...)
					cmd.Dir = dir
					// git must not look for a repository above the temp dir.
					cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("%s failed: %v\n%s\ndiff:\n%s", tool.name, err, out, diff)
					}
					got, err := os.ReadFile(file)
					switch {
					case c.new == nil:
						if err == nil {
							t.Fatalf("%s left %s in place, want it deleted\ndiff:\n%s", tool.name, file, diff)
						}
					case err != nil:
						t.Fatal(err)
					case !bytes.Equal(got, c.new):
						t.Fatalf("%s gave %q, want %q\ndiff:\n%s", tool.name, got, c.new, diff)
					}
				})
			}
		})
	}
}

func TestDiffLarge(t *testing.T) {
	old := bigFile(1 << 20)
	tests := []struct {
		name string
		new  []byte
	}{
		{"one line", bytes.Replace(old, []byte("line 12000 "), []byte("LINE 12000 "), 1)},
		{"first line", bytes.Replace(old, []byte("line 0 "), []byte("LINE 0 "), 1)},
		{"last byte", old[:len(old)-1]},
		{"every 7th line", everyNth(old, 7)},
		{"reversed", reverseLines(old[:64<<10])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff("big.txt", old, tt.new)
			checkDiff(t, old, tt.new, d)
		})
	}
}

// bigFile returns about size bytes of distinct, code-like lines.
func bigFile(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "line %d of the file: x = compute(%d, %q)\n", i, i*7, "abc")
		if i%10 == 0 {
			b.WriteString("}\n\n")
		}
	}
	return b.Bytes()
}

func everyNth(b []byte, n int) []byte {
	ls := strings.SplitAfter(string(b), "\n")
	for i := 0; i < len(ls); i += n {
		ls[i] = strings.Replace(ls[i], "line", "LINE", 1)
	}
	return []byte(strings.Join(ls, ""))
}

func reverseLines(b []byte) []byte {
	ls := splitLines(b)
	var out []byte
	for i := len(ls) - 1; i >= 0; i-- {
		out = append(out, ls[i]...)
	}
	return out
}

func BenchmarkDiff1MiB(b *testing.B) {
	old := bigFile(1 << 20)
	new := bytes.Replace(old, []byte("line 12000 "), []byte("LINE 12000 "), 1)
	b.SetBytes(int64(len(old)))
	b.ReportAllocs()
	for b.Loop() {
		if Diff("big.txt", old, new) == "" {
			b.Fatal("empty diff")
		}
	}
}

func BenchmarkDiff1MiBScattered(b *testing.B) {
	old := bigFile(1 << 20)
	new := everyNth(old, 7)
	b.SetBytes(int64(len(old)))
	b.ReportAllocs()
	for b.Loop() {
		if Diff("big.txt", old, new) == "" {
			b.Fatal("empty diff")
		}
	}
}
