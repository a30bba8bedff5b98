package store

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckpointCycle measures what the checkpointer costs per patch
// on the ingest path: each round submits a batch of patches, checkpoints
// them queued, moves them to applying and applied, and checkpoints them
// again, as under a steady load with the worker behind. Only the
// checkpoints are timed, and neither the journal nor index.db is synced;
// cpu-ns/patch is the process's CPU time during the checkpoints (the
// machine's other tenants move ns/op more than it).
func BenchmarkCheckpointCycle(b *testing.B) { benchCheckpoint(b, true) }

// BenchmarkCheckpointQueued is the first half of a cycle only: each
// checkpoint writes a batch of new queued patches, as when patches come in
// faster than the worker takes them (the ingest benchmark's shape).
func BenchmarkCheckpointQueued(b *testing.B) { benchCheckpoint(b, false) }

func benchCheckpoint(b *testing.B, finish bool) {
	dir := b.TempDir()
	s, err := Open(dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	body := []byte("x")
	const batch = 2000
	var cpu time.Duration
	ck := func() {
		t0 := cpuTime(b)
		if err := s.checkpoint(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - t0
	}
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		b.StopTimer()
		ids := make([]string, 0, batch)
		for i := range min(batch, b.N-n) {
			id := "c" + strconv.Itoa(n+i) + "-" + strconv.Itoa((n+i)*7919%10007)
			ids = append(ids, id)
			if _, _, err := s.Submit(ctx, Patch{ID: id}, body); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		ck()
		if !finish {
			continue
		}
		b.StopTimer()
		for _, id := range ids {
			mustUpdateB(b, s, id, StateApplying)
			mustUpdateB(b, s, id, StateApplied)
		}
		b.StartTimer()
		ck()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/patch")
}

func mustUpdateB(b *testing.B, s *Store, id string, st State) {
	b.Helper()
	if _, err := s.Update(context.Background(), id, func(p *Patch) error {
		p.State = st
		p.Files = []FileChange{{Path: "src/app.py"}}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSubmitLookup measures what Submit pays to learn that a new id
// is not in index.db, with 20,000 patches there.
func BenchmarkSubmitLookup(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{NoSync: true, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range 20000 {
		if _, _, err := s.Submit(ctx, Patch{ID: "h" + strconv.Itoa(i)}, []byte("x")); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.checkpoint(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			l := s.prefind("new-" + strconv.Itoa(i))
			if l.ok || l.err != nil {
				b.Fatal("found")
			}
		}
	})
}
