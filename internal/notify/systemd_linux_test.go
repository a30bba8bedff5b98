package notify

import (
	"crypto/rand"
	"syscall"
	"testing"
)

func TestSystemdAbstractSocket(t *testing.T) {
	testMessages(t, "@patchd-notify-test-"+rand.Text())
}

// TestMonotonicUsec checks the clock against one read independently:
// sysinfo's uptime is CLOCK_BOOTTIME, which is CLOCK_MONOTONIC plus time
// spent suspended, so it can never be behind. (A wrong clock, such as
// CLOCK_REALTIME, would be decades ahead.)
func TestMonotonicUsec(t *testing.T) {
	got, err := monotonicUsec()
	if err != nil {
		t.Fatalf("monotonicUsec: %v", err)
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatalf("sysinfo: %v", err)
	}
	// sysinfo rounds uptime to whole seconds.
	if limit := uint64(si.Uptime+1) * 1_000_000; got == 0 || got > limit {
		t.Errorf("monotonicUsec() = %d, want in (0, %d] (uptime %ds)", got, limit, si.Uptime)
	}
}
