// Package gctune tunes the Go garbage collector for patchd's long-running
// processes (the daemon and the gateway).
//
// Go's default (GOGC=100) collects each time the heap doubles over what
// is live. patchd's live heap is often small (a few MiB: the queued
// patches, the entries changed since the last checkpoint), so under a
// burst of patches it collected many times a second. patchd gives the heap
// a headroom of Headroom over what is live, or of what is live if that is
// more: at least as much as Go's default, never less, so it collects
// fewer times when little is live and as Go would when much is (a long
// backlog of queued patches), and the heap stays within twice its live
// size or Headroom over it, whichever is more.
//
// A fixed soft memory limit (GOMEMLIMIT) is not used: with a backlog the
// live heap grows towards any such limit, and the collector then runs
// back to back (measured: 93 collections in 10 s against Go's default 61,
// and 10% of the daemon's CPU, at 64 clients with a growing backlog; see
// bench/notes.md, issue 13).
//
// The Go runtime has no such policy of its own; this package sets GOGC
// after each collection from the live heap it measured
// (runtime/metrics' /gc/heap/live:bytes).
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

const (
	// Headroom is how much the heap may grow over what is live before the
	// next collection, when that is more than what is live.
	Headroom = 48 << 20
	// MaxPercent bounds the GOGC set for a tiny live heap.
	MaxPercent = 2000
)

// Percent is the GOGC that gives a heap with live bytes live the headroom
// of Headroom or live, whichever is more: never below Go's default 100,
// at most MaxPercent.
func Percent(live uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := uint64(100)
	if live < Headroom {
		p = 100 * Headroom / live
	}
	return int(min(p, MaxPercent))
}

// Tuner sets GOGC after each collection; see the package comment.
type Tuner struct {
	stopped atomic.Bool
	sample  []metrics.Sample
	last    int
	adjusts atomic.Int64
}

// Start tunes the collector from now until Stop, unless the environment
// (getenv: os.Getenv) sets GOGC: the user's setting wins (the runtime
// applies it itself). It returns nil then. GOMEMLIMIT, if set, is applied
// by the runtime as usual, and bounds the heap whatever GOGC says.
func Start(getenv func(string) string) *Tuner {
	if getenv("GOGC") != "" {
		return nil
	}
	t := &Tuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// Stop ends the tuning at the next collection; GOGC stays as last set.
// A nil Tuner is fine.
func (t *Tuner) Stop() {
	if t != nil {
		t.stopped.Store(true)
	}
}

// Adjustments is how many times the tuner has looked at the live heap.
func (t *Tuner) Adjustments() int64 { return t.adjusts.Load() }

// gcHook is allocated and dropped at once: its finalizer runs after the
// next collection, which is when the live heap is known.
type gcHook struct{ _ [16]byte }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&gcHook{}, func(*gcHook) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

// adjust runs on the finalizer goroutine, one at a time.
func (t *Tuner) adjust() {
	t.adjusts.Add(1)
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := Percent(t.sample[0].Value.Uint64())
	// SetGCPercent stops the world briefly: only for a change that
	// matters.
	if t.last == 0 || p < t.last*9/10 || p > t.last*11/10 {
		debug.SetGCPercent(p)
		t.last = p
	}
}
