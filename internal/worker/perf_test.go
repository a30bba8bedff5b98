package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// BenchmarkProcessSmall is the ingest benchmark's patch (a regex on the
// VERSION line of a small file, in a block with a description and
// metadata as a custom GPT sends them) stored and applied by the worker:
// the worker's share of what each patch costs at one client. Its
// allocs/op, unlike its time, does not move with the machine's load.
func BenchmarkProcessSmall(b *testing.B) {
	dir := b.TempDir()
	wsDir := filepath.Join(dir, "ws")
	os.MkdirAll(filepath.Join(wsDir, "src"), 0o755)
	app := "\"\"\"A small web app.\"\"\"\n\nVERSION = \"0\"\n\n\ndef footer():\n    return \"build \" + VERSION\n"
	if err := os.WriteFile(filepath.Join(wsDir, "src", "app.py"), []byte(app), 0o644); err != nil {
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
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := "p-1-" + strconv.Itoa(i)
		i++
		body := `{"id":"` + id + `","role":"ui_patch","target_file":"src/app.py",` +
			`"description":"Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place.",` +
			`"patch":{"pattern":"VERSION = \"[^\"]*\"","replacement":"VERSION = \"` + id + `\""},` +
			`"metadata":{"author":"gpt","source":"custom-gpt","phase":"P8.13.22","timestamp":"2025-07-29T22:48:00Z","reason":"footer build id"}}`
		p, _, err := st.Submit(ctx, store.Patch{ID: id, Role: "ui_patch", Target: "src/app.py"}, []byte(body))
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
}
