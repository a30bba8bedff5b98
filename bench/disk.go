package main

import (
	"context"
	"os"
	"slices"
	"time"
)

// fsyncProbe is the disk's own latency for what a durable acknowledgement
// needs: append a record to a file and fsync it, one at a time.
type fsyncProbe struct {
	when string
	lat  []time.Duration // sorted
}

// probeFsync appends 512-byte records to a file in dir with an fsync after
// each, for d, and returns the latencies.
func probeFsync(ctx context.Context, dir, when string, d time.Duration) (fsyncProbe, error) {
	p := fsyncProbe{when: when}
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return p, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, 512)
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; {
		t0 := time.Now()
		if _, err := f.Write(rec); err != nil {
			return p, err
		}
		if err := f.Sync(); err != nil {
			return p, err
		}
		p.lat = append(p.lat, time.Since(t0))
	}
	slices.Sort(p.lat)
	return p, nil
}

// probeDisk records the disk's fsync latency into the report.
func (b *bench) probeDisk(ctx context.Context, rep *report, when string) error {
	logf("disk: append+fsync latency, %s", when)
	p, err := probeFsync(ctx, b.tmp, when, 3*time.Second)
	if err != nil {
		return err
	}
	rep.fsync = append(rep.fsync, p)
	return nil
}
