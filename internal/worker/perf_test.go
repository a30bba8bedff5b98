package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchd/patchd/internal/benchdata"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// BenchmarkProcess1MiB is one regex patch on a 1 MiB file (the end-to-end
// benchmark's src/values.py, benchdata.BigSource) through the whole
// worker: plan, blob, applying record, atomic write, applied record with
// its diff, summary. Its fsyncs go to the disk under the temporary
// directory.
func BenchmarkProcess1MiB(b *testing.B) {
	for _, bc := range []struct {
		name             string
		pattern, replace func(string) string
		expand           bool
	}{
		{"literal", benchdata.LiteralPattern, benchdata.LiteralReplacement, false},
		{"capture", benchdata.CapturePattern, benchdata.CaptureReplacement, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			wsDir := filepath.Join(dir, "ws")
			os.MkdirAll(wsDir, 0o755)
			if err := os.WriteFile(filepath.Join(wsDir, "values.py"), benchdata.BigSource(), 0o644); err != nil {
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
					id, bc.pattern(from), bc.replace(to), bc.expand)
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
