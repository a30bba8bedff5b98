package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// slowBody is a patch of n regex edits that RE2 takes about 100 ms each
// to run over slowFile (slowFile is smaller under the race detector, which
// slows RE2 down some forty times); each finds
// its one match at the end of the file, replaced by itself, so that every
// edit runs.
func slowBody(id string, n int) string {
	edit := `{"target_file":"slow.txt","pattern":"(?:[a-j\n]){1000}j","replacement":"$0","expand":true}`
	return fmt.Sprintf(`{"id":%q,"role":"r","edits":[%s]}`, id, strings.TrimSuffix(strings.Repeat(edit+",", n), ","))
}

func slowFile() string {
	lines := 256
	if raceEnabled {
		lines = 32
	}
	return strings.Repeat(strings.Repeat("a", 63)+"\n", lines) + "j"
}

// lockedBuffer is a log destination a test reads while the worker writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitLog(t *testing.T, logs *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemoryBombFailsOnlyThePatch: 36 doubling edits fail on the file
// limit, naming its setting, and the next patch is applied.
func TestMemoryBombFailsOnlyThePatch(t *testing.T) {
	f := newFixture(t)
	f.limits = Limits{Limits: patch.Limits{MaxFileBytes: 1 << 20, MaxPatchBytes: 4 << 20}, PlanTimeout: time.Minute}
	f.store.Close()
	f.open()
	f.write("a.txt", strings.Repeat("0123456789abcde\n", 190), 0o644)
	edit := `{"target_file":"a.txt","pattern":"(?s)(.*)","replacement":"$1$1","expand":true}`
	f.submitBody("bomb", `{"id":"bomb","role":"r","edits":[`+strings.TrimSuffix(strings.Repeat(edit+",", 36), ",")+`]}`)
	f.submit("after", "a.txt", "0123", "3210")
	f.run()
	p := f.settle("bomb")
	if p.State != store.StateFailed || !strings.Contains(p.Error, "a.txt would grow past 1 MiB") || !strings.Contains(p.Error, "(setting max-file-size)") {
		t.Fatalf("bomb: %s %q, want failed on the file limit, naming max-file-size", p.State, p.Error)
	}
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after the bomb: %s %q, want applied", p.State, p.Error)
	}
}

// TestPlanTimeout: a patch whose planning passes the budget fails at the
// budget, naming the setting, and the queue goes on.
func TestPlanTimeout(t *testing.T) {
	f := newFixture(t)
	f.limits = Limits{PlanTimeout: 200 * time.Millisecond}
	f.store.Close()
	f.open()
	f.write("slow.txt", slowFile(), 0o644)
	f.write("b.txt", "hello\n", 0o644)
	f.submitBody("slow", slowBody("slow", 10))
	f.submit("after", "b.txt", "hello", "world")
	start := time.Now()
	f.run()
	p := f.settle("slow")
	took := time.Since(start)
	if p.State != store.StateFailed || !strings.Contains(p.Error, "took longer than 200ms") || !strings.Contains(p.Error, "(setting plan-timeout)") || p.Code != CodePlanTimeout {
		t.Fatalf("slow: %s %q (code %q), want failed on the time budget, naming plan-timeout, %s", p.State, p.Error, p.Code, CodePlanTimeout)
	}
	if took > 3*time.Second {
		t.Errorf("the 200ms budget failed the patch after %v", took)
	}
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after: %s %q, want applied", p.State, p.Error)
	}
}

// TestStopDuringPlanning: a stop does not wait for a slow patch's
// planning; the patch stays queued, and its attempt is closed (a clean
// stop is no crash).
func TestStopDuringPlanning(t *testing.T) {
	f := newFixture(t)
	logs := &lockedBuffer{}
	f.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.limits = Limits{PlanTimeout: time.Hour}
	f.store.Close()
	f.open()
	f.write("slow.txt", slowFile(), 0o644)
	f.submitBody("slow", slowBody("slow", 100))
	f.run()
	waitLog(t, logs, "starting on a patch")
	start := time.Now()
	f.stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("stop took %v during planning, want at once", took)
	}
	if p, _ := f.store.Get("slow"); p.State != store.StateQueued {
		t.Errorf("after the stop: %s %q, want queued", p.State, p.Error)
	}
	if n, err := f.store.BeginAttempt("slow"); n != 0 || err != nil {
		t.Errorf("BeginAttempt after a clean stop = %d, %v; want 0 deaths", n, err)
	}
	f.store.EndAttempt()
}

// TestCrashedTwice: a patch found twice cut short by the daemon's death
// fails instead of being tried a third time.
func TestCrashedTwice(t *testing.T) {
	f := newFixture(t)
	f.write("a.txt", "hello\n", 0o644)
	f.submit("P1", "a.txt", "hello", "world")
	for range 2 { // two daemons that died working on P1
		if _, err := f.store.BeginAttempt("P1"); err != nil {
			t.Fatal(err)
		}
		f.store.Close()
		f.open()
	}
	f.submit("P2", "a.txt", "hello", "salut")
	f.run()
	if p := f.settle("P1"); p.State != store.StateFailed || p.Error != crashedError {
		t.Fatalf("P1: %s %q, want failed with %q", p.State, p.Error, crashedError)
	}
	if p := f.settle("P2"); p.State != store.StateApplied {
		t.Fatalf("P2: %s %q, want applied", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "salut\n" {
		t.Errorf("a.txt = %q, want P2's change alone", got)
	}
}

// TestPreviewOfHugeFile: a preview naming a 20 GiB (sparse) file is
// refused by its size, at once.
func TestPreviewOfHugeFile(t *testing.T) {
	f := newFixture(t)
	f.limits = Limits{Limits: patch.Limits{MaxFileBytes: 64 << 20, MaxPatchBytes: 256 << 20}, PlanTimeout: 10 * time.Second}
	f.store.Close()
	f.open()
	big, err := os.Create(filepath.Join(f.ws, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(20 << 30); err != nil {
		t.Skipf("no sparse file: %v", err)
	}
	big.Close()
	blk, err := patch.Parse([]byte(`{"id":"v","role":"r","target_file":"huge.bin","patch":{"search":"x","replace":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = f.worker.Preview(context.Background(), blk)
	var le *patch.LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "huge.bin is 20 GiB, larger than 64 MiB") || !strings.Contains(err.Error(), "(setting max-file-size)") {
		t.Fatalf("Preview = %v, want the file limit, naming max-file-size", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusing took %v", took)
	}
}

// TestDroppedWhilePlanning: a patch dropped while the worker plans it
// keeps the reason it was dropped.
func TestDroppedWhilePlanning(t *testing.T) {
	f := newFixture(t)
	logs := &lockedBuffer{}
	f.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.limits = Limits{PlanTimeout: 300 * time.Millisecond}
	f.store.Close()
	f.open()
	f.write("slow.txt", slowFile(), 0o644)
	f.write("b.txt", "hello\n", 0o644)
	f.submitBody("slow", slowBody("slow", 10))
	f.submit("after", "b.txt", "hello", "world")
	f.run()
	waitLog(t, logs, "starting on a patch")
	if _, err := f.store.Drop(context.Background(), "slow"); err != nil {
		t.Fatal(err)
	}
	if p := f.settle("after"); p.State != store.StateApplied {
		t.Fatalf("the patch after: %s %q, want applied", p.State, p.Error)
	}
	if p, _ := f.store.Get("slow"); p.State != store.StateFailed || p.Error != store.DroppedError {
		t.Errorf("dropped patch: %s %q, want failed with %q", p.State, p.Error, store.DroppedError)
	}
}

// TestRevertOfGrownFile: a file that grew past the file limit since its
// patch was applied is not read whole to be compared: the revert is
// refused naming the limit, and the file is left as it is.
func TestRevertOfGrownFile(t *testing.T) {
	f := newFixture(t)
	f.limits = Limits{Limits: patch.Limits{MaxFileBytes: 1 << 20, MaxPatchBytes: 4 << 20}}
	f.store.Close()
	f.open()
	f.write("a.txt", "hello\n", 0o644)
	f.submit("P1", "a.txt", "hello", "world")
	f.run()
	if p := f.settle("P1"); p.State != store.StateApplied {
		t.Fatalf("P1: %s %q", p.State, p.Error)
	}
	big := strings.Repeat("x", 2<<20)
	f.write("a.txt", big, 0o644)
	_, err := f.worker.Revert(context.Background(), "P1")
	if err == nil || !strings.Contains(err.Error(), "a.txt is 2 MiB, larger than 1 MiB, the largest file a patch may read or write (setting max-file-size)") {
		t.Fatalf("Revert = %v, want a refusal naming the file limit", err)
	}
	if f.read("a.txt") != big {
		t.Errorf("a.txt changed by a refused revert")
	}
	if p, _ := f.store.Get("P1"); p.State != store.StateApplied {
		t.Errorf("P1 after a refused revert: %s, want applied", p.State)
	}
}

// TestResentWhilePlanning: a patch dropped while the worker plans it, and
// sent again at once with another body (a new attempt), gets the new
// body's outcome: the plan of the dropped body is neither applied to it
// nor does its failure become the new attempt's.
func TestResentWhilePlanning(t *testing.T) {
	f := newFixture(t)
	logs := &lockedBuffer{}
	f.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.limits = Limits{PlanTimeout: time.Second}
	f.store.Close()
	f.open()
	f.write("slow.txt", slowFile(), 0o644)
	f.write("b.txt", "hello\n", 0o644)
	f.submitBody("slow", slowBody("slow", 50))
	f.run()
	waitLog(t, logs, "starting on a patch")
	if _, err := f.store.Drop(context.Background(), "slow"); err != nil {
		t.Fatal(err)
	}
	f.submitBody("slow", `{"id":"slow","role":"r","target_file":"b.txt","patch":{"search":"hello","replace":"world"}}`)
	p := f.settle("slow")
	if p.State != store.StateApplied || len(p.Attempts) != 1 || p.Attempts[0].Code != store.CodeDropped {
		t.Fatalf("the new attempt: %s %q, attempts %+v; want applied after the dropped one", p.State, p.Error, p.Attempts)
	}
	if got := f.read("b.txt"); got != "world\n" {
		t.Errorf("b.txt = %q, want the new attempt's change", got)
	}
	if got := f.read("slow.txt"); got != slowFile() {
		t.Errorf("slow.txt was changed by the dropped attempt")
	}
}
