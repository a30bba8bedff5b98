package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		live uint64
		want int
	}{
		{0, MaxPercent},
		{1 << 20, MaxPercent}, // 48 MiB over 1 MiB would be 4800%
		{4 << 20, 1200},       // 48 MiB over 4 MiB
		{24 << 20, 200},       // 48 MiB over 24 MiB
		{Headroom, 100},       // from here on, Go's default
		{200 << 20, 100},
	} {
		if got := Percent(tt.live); got != tt.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tt.live>>20, got, tt.want)
		}
	}
}

// TestTunerFollowsLiveHeap: the tuner sets GOGC after each collection from
// the live heap, raising it when little is live and bringing it down to
// Go's default as the live heap grows past the headroom.
func TestTunerFollowsLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	debug.SetGCPercent(100)
	tu := Start(func(string) string { return "" })
	defer tu.Stop()
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			n := tu.Adjustments()
			runtime.GC()
			for tu.Adjustments() == n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if ok() {
				return
			}
		}
		t.Fatalf("%s: GOGC is %d", what, percent())
	}
	waitFor("a small live heap", func() bool { return percent() > 200 })
	big := make([][]byte, 0, 100)
	for range 100 {
		big = append(big, make([]byte, 1<<20)) // 100 MiB live
	}
	waitFor("100 MiB live", func() bool { return percent() == 100 })
	runtime.KeepAlive(big)
	big = nil
	waitFor("freed again", func() bool { return percent() > 200 })
}

func TestUserGOGCWins(t *testing.T) {
	if tu := Start(func(k string) string {
		if k == "GOGC" {
			return "150"
		}
		return ""
	}); tu != nil {
		tu.Stop()
		t.Error("Start tuned the collector although GOGC is set")
	}
}
