package main

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
)

// fsyncProbe is the disk's own latency for what a durable acknowledgement
// needs, one commit at a time, in one of two ways: appending a record and
// fsyncing (the file grows every time, so every fsync also commits the
// file system's metadata), or overwriting zeros written ahead and
// fdatasyncing (data only), which is what patchd's journal does.
type fsyncProbe struct {
	when string
	mode string
	lat  []time.Duration // sorted
}

// probeModes are the ways probeFsync commits a record.
var probeModes = []string{"append + fsync", "overwrite + fdatasync"}

// probeFsync commits 512-byte records to a file in dir, one after the
// other, for d, and returns the latencies.
func probeFsync(ctx context.Context, dir, when, mode string, d time.Duration) (fsyncProbe, error) {
	p := fsyncProbe{when: when, mode: mode}
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return p, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := make([]byte, 512)
	ahead := mode == probeModes[1]
	const room = 64 << 20
	if ahead {
		zeros := make([]byte, 1<<20)
		for range room / len(zeros) {
			if _, err := f.Write(zeros); err != nil {
				return p, err
			}
		}
		if err := f.Sync(); err != nil {
			return p, err
		}
	}
	var off int64
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil && off+512 <= room; off += 512 {
		t0 := time.Now()
		if ahead {
			if _, err := f.WriteAt(rec, off); err != nil {
				return p, err
			}
			err = fsutil.Datasync(f)
		} else {
			if _, err := f.Write(rec); err != nil {
				return p, err
			}
			err = f.Sync()
		}
		if err != nil {
			return p, err
		}
		p.lat = append(p.lat, time.Since(t0))
	}
	slices.Sort(p.lat)
	return p, nil
}

// probeDisk records the disk's commit latency into the report.
func (b *bench) probeDisk(ctx context.Context, rep *report, when string) error {
	for _, mode := range probeModes {
		logf("disk: %s latency, %s", mode, when)
		p, err := probeFsync(ctx, b.tmp, when, mode, 2*time.Second)
		if err != nil {
			return err
		}
		rep.fsync = append(rep.fsync, p)
	}
	return nil
}

// cpuIdle is the share of the machine's CPU time that was idle during d,
// from /proc/stat.
func cpuIdle(d time.Duration) float64 {
	read := func() (idle, total uint64) {
		data, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			if i < 8 { // user nice system idle iowait irq softirq steal
				total += n
			}
			if i == 3 {
				idle = n
			}
		}
		return idle, total
	}
	i1, t1 := read()
	time.Sleep(d)
	i2, t2 := read()
	if t2 <= t1 {
		return 1
	}
	return float64(i2-i1) / float64(t2-t1)
}

// waitIdle waits, up to limit, until the machine is at least 90% idle over
// two seconds: the other tenants of a shared host come and go. It returns
// the last idle share seen.
func waitIdle(ctx context.Context, limit time.Duration, what string) float64 {
	deadline := time.Now().Add(limit)
	for {
		idle := cpuIdle(2 * time.Second)
		if idle >= 0.9 || limit <= 0 || ctx.Err() != nil {
			return idle
		}
		if time.Now().After(deadline) {
			logf("machine still busy (%.0f%% idle) after %s; measuring %s anyway", 100*idle, limit, what)
			return idle
		}
		logf("machine busy (%.0f%% idle); waiting before %s", 100*idle, what)
		time.Sleep(3 * time.Second)
	}
}

// awaitIdle waits for an idle machine before the measurement what (""
// for the start of the run, which may wait longer) and records what it saw.
func (b *bench) awaitIdle(ctx context.Context, rep *report, what string) {
	limit, name := min(b.opts.waitIdle, time.Minute), what
	if what == "" {
		limit, name = b.opts.waitIdle, "the benchmarks"
	}
	share := waitIdle(ctx, limit, name)
	if what != "" {
		rep.idle = append(rep.idle, idleSeen{what: what, share: share})
	}
}
