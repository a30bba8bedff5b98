//go:build linux

package worker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

// TestCheckTimeoutKillsGrandchildren: a check that times out is killed with
// every process it started, even one that keeps the output pipe open, and
// one a passing check leaves behind is killed too (finding 5).
func TestCheckTimeoutKillsGrandchildren(t *testing.T) {
	f := newFixture(t)
	slowPid := filepath.Join(f.dir, "outside", "slow.pid")
	leftPid := filepath.Join(f.dir, "outside", "left.pid")
	f.checks = []config.Check{
		{Name: "leaves", Command: []string{"sh", "-c", "sleep 300 & echo $! > " + leftPid}, Timeout: 30 * time.Second, Paths: []string{"b.txt"}},
		{Name: "slow", Command: []string{"sh", "-c", "sleep 300 & echo $! > " + slowPid + "; wait"}, Timeout: 300 * time.Millisecond, Paths: []string{"a.txt"}},
	}
	f.store.Close()
	f.open()
	f.write("a.txt", "a\n", 0o644)
	f.write("b.txt", "b\n", 0o644)
	f.submit("slow", "a.txt", "a", "b")
	f.submit("leaves", "b.txt", "b", "c")
	start := time.Now()
	f.run()
	p := f.settle("slow")
	if p.State != store.StateFailed || !strings.Contains(p.Error, "timed out after 300ms") {
		t.Errorf("slow: state %s error %q, want failed by the timeout", p.State, p.Error)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the timed-out check took %s to end, want about its 300ms limit", took)
	}
	if p := f.settle("leaves"); p.State != store.StateApplied {
		t.Errorf("leaves: state %s error %q, want applied (the check exited 0)", p.State, p.Error)
	}
	for _, pidFile := range []string{slowPid, leftPid} {
		waitGone(t, pidFile)
	}
}

// waitGone waits until the process whose pid is in pidFile is gone (or a
// zombie, dead but not reaped by an init that does not reap).
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the check did not write its child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || syscall.Kill(pid, 0) != nil {
			return
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the check's child %d (%s) is still running after the check ended", pid, pidFile)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
