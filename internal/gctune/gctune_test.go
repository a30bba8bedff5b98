package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	Apply(getenv)
	if got := debug.SetGCPercent(-1); got != Percent {
		t.Errorf("GOGC unset: percent %d, want %d", got, Percent)
	}
	if got := debug.SetMemoryLimit(-1); got != Limit {
		t.Errorf("GOMEMLIMIT unset: limit %d, want %d", got, Limit)
	}

	// The user's settings (which the runtime has applied itself) stay.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	env["GOGC"], env["GOMEMLIMIT"] = "150", "1GiB"
	Apply(getenv)
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("GOGC=150: percent %d, want 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("GOMEMLIMIT=1GiB: limit %d, want %d", got, 1<<30)
	}
}
