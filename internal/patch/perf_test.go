package patch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
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

// TestLargeFileRefusalIsBounded checks that refusing an edit on a 1 MiB
// file, closest lines included, stays fast, for ordinary and for
// pathological (one repeated line, very long lines) files.
func TestLargeFileRefusalIsBounded(t *testing.T) {
	search := strings.Repeat("\tvalue := compute(r.URL.Query().Get(\"missing\"), 1)\n\tif value > 3 {\n", 20)
	files := map[string][]byte{
		"source":        sourceFile(1 << 20),
		"repeated line": bytes.Repeat([]byte("\tvalue := compute(r.URL.Query().Get(\"missing\"), 1)\n"), (1<<20)/52),
		"long lines":    bytes.Repeat([]byte(strings.Repeat("abcdefghij", 400)+"\n"), (1<<20)/4001),
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			e := &SearchReplace{TargetFile: "f", Search: search, Replace: "x\n"}
			_, err := planOne(e, content)
			var me *MatchError
			if !errors.As(err, &me) {
				t.Fatalf("planning %q on %s = %v, want a *MatchError", search[:20], name, err)
			}
			// Generous: the race detector slows this down several times.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusal on a 1 MiB %s file took %v", name, d)
			} else {
				t.Logf("refusal on a 1 MiB %s file took %v", name, d)
			}
		})
	}
}

func BenchmarkRefusal1MiB(b *testing.B) {
	content := sourceFile(1 << 20)
	search := "\tvalue12 := compute(r.URL.Query().Get(\"k13\"), 84)\n\tif value12 > 99 {\n\t\treturn\n"
	e := &SearchReplace{TargetFile: "f", Search: search, Replace: "x\n"}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		if _, err := planOne(e, content); err == nil {
			b.Fatal("want a refusal")
		}
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
