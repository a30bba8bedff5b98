package worker

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/store"
)

// threadsAtNice lists the threads of this process whose nice value is n.
func threadsAtNice(t *testing.T, n int) []string {
	t.Helper()
	dirs, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	var found []string
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join("/proc/self/task", d.Name(), "stat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command name's closing parenthesis start at
		// field 3 (state); nice is field 19.
		_, rest, _ := strings.Cut(string(data), ") ")
		f := strings.Fields(rest)
		if len(f) > 16 && f[16] == strconv.Itoa(n) {
			found = append(found, d.Name())
		}
	}
	return found
}

// TestWorkerRunsAtLowerPriority: while the worker runs, one thread of the
// process has the worker's nice value, so the webhook's goroutines win the
// CPU under load; patches still apply; when the worker stops, that thread
// is gone rather than handed back to the runtime at low priority.
func TestWorkerRunsAtLowerPriority(t *testing.T) {
	// Workers of earlier tests may have left the main thread parked at
	// the lowered priority (see below): only new threads count.
	before := threadsAtNice(t, workerNice)
	fresh := func() []string {
		var out []string
		for _, tid := range threadsAtNice(t, workerNice) {
			if !slices.Contains(before, tid) {
				out = append(out, tid)
			}
		}
		return out
	}
	f := newFixture(t)
	f.write("a.txt", "x = 1\n", 0o644)
	f.submit("N1", "a.txt", "x = 1", "x = 2")
	f.run()
	if p := f.settle("N1"); p.State != store.StateApplied {
		t.Fatalf("N1 = %s %s", p.State, p.Error)
	}
	if got := fresh(); len(got) != 1 {
		t.Errorf("new threads at nice %d while the worker runs: %v, want exactly one", workerNice, got)
	}
	f.stop()
	// The runtime ends a thread whose goroutine exits locked to it, except
	// the main thread (its tid is the pid), which it parks for good: in
	// neither case does other code run at the lowered priority.
	main := strconv.Itoa(os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := fresh()
		if len(left) == 0 || (len(left) == 1 && left[0] == main) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads at nice %d after the worker stopped: %v, want none but a parked main thread (%s)", workerNice, left, main)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
