package patch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// sourceFile is about size bytes of varied, code-like lines.
func sourceFile(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "func handler%d(w http.ResponseWriter, r *http.Request) {\n", i)
		case 1:
			fmt.Fprintf(&b, "\tvalue%d := compute(r.URL.Query().Get(\"k%d\"), %d)\n", i, i%97, i*7)
		case 2:
			fmt.Fprintf(&b, "\tif value%d > %d {\n\t\treturn\n\t}\n", i-1, i%13)
		case 3:
			fmt.Fprintf(&b, "\tfmt.Fprintf(w, \"%%d\\n\", value%d)\n", i-2)
		default:
			b.WriteString("}\n\n")
		}
	}
	return b.Bytes()
}

// largeFiles are 1 MiB files on which refusing an edit must stay cheap:
// ordinary code, and the pathological shapes for the closest-lines search
// (one line repeated, very long lines).
func largeFiles() map[string][]byte {
	return map[string][]byte{
		"source":        sourceFile(1 << 20),
		"repeated line": bytes.Repeat([]byte("\tvalue := compute(r.URL.Query().Get(\"missing\"), 1)\n"), (1<<20)/52),
		"long lines":    bytes.Repeat([]byte(strings.Repeat("abcdefghij", 400)+"\n"), (1<<20)/4001),
	}
}

// largeSearch matches nowhere in largeFiles, but its lines resemble theirs.
var largeSearch = strings.Repeat("\tvalue := compute(r.URL.Query().Get(\"missing\"), 1)\n\tif value > 3 {\n", 20)

// TestLargeFileRefusal checks that an edit that does not match a 1 MiB
// file is refused as a *MatchError, closest lines included, for ordinary
// and pathological files. How long that takes is measured by
// BenchmarkRefusal1MiB, not asserted here: a timed test fails on a busy
// machine and passes a slow change on a quiet one.
func TestLargeFileRefusal(t *testing.T) {
	for name, content := range largeFiles() {
		t.Run(name, func(t *testing.T) {
			e := &SearchReplace{TargetFile: "f", Search: largeSearch, Replace: "x\n"}
			_, err := planOne(e, content)
			var me *MatchError
			if !errors.As(err, &me) {
				t.Fatalf("planning %q on %s = %v, want a *MatchError", largeSearch[:20], name, err)
			}
		})
	}
}

// BenchmarkRefusal1MiB measures refusing an edit on each of largeFiles.
func BenchmarkRefusal1MiB(b *testing.B) {
	for name, content := range largeFiles() {
		b.Run(name, func(b *testing.B) {
			e := &SearchReplace{TargetFile: "f", Search: largeSearch, Replace: "x\n"}
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				if _, err := planOne(e, content); err == nil {
					b.Fatal("want a refusal")
				}
			}
		})
	}
}

func BenchmarkDiffHunks1MiB(b *testing.B) {
	old := sourceFile(1 << 20)
	new := bytes.ReplaceAll(old, []byte("return\n"), []byte("return // done\n"))
	d := Diff("f", old, new)
	files, err := parseUnifiedDiff(d, "")
	if err != nil {
		b.Fatal(err)
	}
	e := &UnifiedDiff{Text: d, files: files}
	b.SetBytes(int64(len(old)))
	for b.Loop() {
		if _, err := planOne(e, old); err != nil {
			b.Fatal(err)
		}
	}
}
