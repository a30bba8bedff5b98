package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// bigSource is about 1 MiB of one assignment a line, as the end-to-end
// benchmark's src/values.py: line 9000 is named by the literal pattern,
// line 7000 is the only one whose argument ends in 0003.
func bigSource() string {
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		arg := i*10 + 1
		if i == 7000 {
			arg = 70000003
		}
		fmt.Fprintf(&sb, "value_%05d = compute(%d, \"abc\")  # keep in sync with the table in docs/values.md\n", i, arg)
	}
	return sb.String()
}

// BenchmarkProcess1MiB is one regex patch on a 1 MiB file through the
// whole worker: plan, blob, applying record, atomic write, applied record
// with its diff, summary. Its fsyncs go to the disk under the temporary
// directory.
func BenchmarkProcess1MiB(b *testing.B) {
	for _, bc := range []struct {
		name             string
		pattern, replace string
		expand           bool
	}{
		{"literal", `value_09000 = compute\(90001, "%s"\)`, `value_09000 = compute(90001, "%s")`, false},
		{"capture", `compute\((\d+)0003, "%s"\)`, `compute(${1}0003, "%s")`, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			wsDir := filepath.Join(dir, "ws")
			os.MkdirAll(wsDir, 0o755)
			if err := os.WriteFile(filepath.Join(wsDir, "values.py"), []byte(bigSource()), 0o644); err != nil {
				b.Fatal(err)
			}
			st, err := store.Open(filepath.Join(dir, "queue"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ws, err := workspace.Open(wsDir)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			w := New(Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(dir, "summaries")})
			ctx := context.Background()
			i := 0
			for b.Loop() {
				from, to := "abc", "xyz"
				if i%2 == 1 {
					from, to = to, from
				}
				id := fmt.Sprintf("p%d", i)
				i++
				body := fmt.Sprintf(`{"id":%q,"role":"refactor","target_file":"values.py","description":"flip","patch":{"pattern":%q,"replacement":%q,"expand":%v}}`,
					id, fmt.Sprintf(bc.pattern, from), fmt.Sprintf(bc.replace, to), bc.expand)
				p, _, err := st.Submit(ctx, store.Patch{ID: id, Role: "refactor", Target: "values.py"}, []byte(body))
				if err != nil {
					b.Fatal(err)
				}
				if err := w.process(ctx, p); err != nil {
					b.Fatal(err)
				}
				if q, _ := st.Get(id); q.State != store.StateApplied {
					b.Fatalf("patch %s is %s: %s", id, q.State, q.Error)
				}
			}
		})
	}
}
