package store

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkOpen measures opening a store that holds a long history: every
// patch submitted, applying and applied (three records, as the worker
// writes them, with a 12-line diff), no compaction. ns/op is one Open
// (replaying the journal); heap-B/patch is what the index keeps in memory
// per patch afterwards.
func BenchmarkOpen(b *testing.B) {
	const n = 20000
	dir := b.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	diff := strings.Repeat("+ one changed line of code, as a diff shows it\n", 12)
	for i := range n {
		id := fmt.Sprintf("patch-%06d", i)
		body := `{"id":"` + id + `","role":"refactor","target_file":"src/app.py","patch":{"pattern":"a","replacement":"b"}}`
		if _, _, err := s.Submit(ctx, Patch{ID: id, Role: "refactor", Target: "src/app.py", Description: "Return early when the value is missing"}, []byte(body)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Update(ctx, id, func(p *Patch) error {
			p.State = StateApplying
			p.Files = []FileChange{{Path: "src/app.py", OldHash: strings.Repeat("a", 64), NewHash: strings.Repeat("b", 64), OldMode: 0o644, Existed: true}}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Update(ctx, id, func(p *Patch) error { p.State, p.Diff = StateApplied, diff; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	var heap float64
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s, err := Open(dir, Options{NoSync: true, SegmentBytes: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(heap/n, "heap-B/patch")
	b.ReportMetric(n, "patches")
}
