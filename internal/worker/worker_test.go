package worker

import (
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

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

type fixture struct {
	t       *testing.T
	dir     string // holds ws/, outside/, queue/, summaries/
	ws      string
	store   *store.Store
	worker  *Worker
	stopped chan struct{}
	cancel  context.CancelFunc
	checks  []config.Check
	git     bool
	limits  Limits
	log     *slog.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, ws: filepath.Join(dir, "ws")}
	os.MkdirAll(filepath.Join(f.ws, "src"), 0o755)
	os.MkdirAll(filepath.Join(dir, "outside"), 0o755)
	f.open()
	t.Cleanup(func() {
		f.stop()
		f.store.Close()
	})
	return f
}

// open opens the store and a worker on it; called again after closing the
// store, it is a restart after a crash.
func (f *fixture) open() {
	f.t.Helper()
	st, err := store.Open(filepath.Join(f.dir, "queue"), store.Options{EventsPath: filepath.Join(f.dir, "events.jsonl")})
	if err != nil {
		f.t.Fatal(err)
	}
	ws, err := workspace.Open(f.ws)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ws.Close() })
	f.store = st
	// The setting names the daemon gives the worker, for its refusals.
	lim := f.limits
	lim.FileSetting, lim.PatchSetting = config.SettingMaxFileSize, config.SettingMaxPatchContent
	lim.PlanTimeoutSetting, lim.MaxEditsSetting = config.SettingPlanTimeout, config.SettingMaxEdits
	f.worker = New(Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(f.dir, "summaries"), Checks: f.checks, Git: f.git, Limits: lim, Logger: f.log})
}

func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.stopped = cancel, make(chan struct{})
	go func() {
		f.worker.Run(ctx)
		close(f.stopped)
	}()
}

func (f *fixture) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.stopped
		f.cancel = nil
	}
}

func (f *fixture) write(rel, content string, mode os.FileMode) {
	f.t.Helper()
	path := filepath.Join(f.ws, rel)
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	os.Chmod(path, mode)
}

func (f *fixture) read(rel string) string {
	data, _ := os.ReadFile(filepath.Join(f.ws, rel))
	return string(data)
}

func (f *fixture) submit(id, target, pattern, replacement string) {
	f.t.Helper()
	body := fmt.Sprintf(`{"id":%q,"role":"ui_patch","target_file":%q,"description":"desc of %s","patch":{"pattern":%q,"replacement":%q}}`,
		id, target, id, pattern, replacement)
	if _, _, err := f.store.Submit(context.Background(), store.Patch{ID: id, Role: "ui_patch", Target: target, Description: "desc of " + id}, []byte(body)); err != nil {
		f.t.Fatal(err)
	}
}

// settle waits until the patch has left queued and applying.
func (f *fixture) settle(id string) store.Patch {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := f.store.Get(id)
		if p.State != store.StateQueued && p.State != store.StateApplying {
			return p
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("patch %s still %s", id, p.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestApplyAndSummary(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "print('hello')\nx = 1\n", 0o755)
	f.submit("P1", "src/app.py", "hello", "world")
	f.run()
	p := f.settle("P1")
	if p.State != store.StateApplied || len(p.Files) != 1 {
		t.Fatalf("state, files = %s, %d (%s), want applied, 1", p.State, len(p.Files), p.Error)
	}
	if got := f.read("src/app.py"); got != "print('world')\nx = 1\n" {
		t.Errorf("file = %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(f.ws, "src/app.py")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want 0755 kept", fi.Mode().Perm())
	}
	if !strings.Contains(p.Diff, "-print('hello')\n+print('world')") {
		t.Errorf("diff = %q", p.Diff)
	}
	sum := f.summary("P1")
	for _, want := range []string{"# Patch P1: applied", `ui\_patch`, "desc of P1", "`src/app.py`", "applied to 1 file(s)", "Duration", "+print('world')"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

func TestFailures(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "unchanged\n", 0o644)
	outside := filepath.Join(f.dir, "outside", "secret.txt")
	os.WriteFile(outside, []byte("secret\n"), 0o644)
	os.Symlink(filepath.Join(f.dir, "outside"), filepath.Join(f.ws, "link"))
	tests := []struct {
		id, target, pattern, want string
	}{
		{"nomatch", "src/app.py", "absent", "pattern not found in src/app.py"},
		{"missing", "src/none.py", "x", "target file src/none.py does not exist"},
		{"symlink-out", "link/secret.txt", "secret", "outside the workspace"},
	}
	for _, tt := range tests {
		f.submit(tt.id, tt.target, tt.pattern, "pwned")
	}
	f.run()
	for _, tt := range tests {
		p := f.settle(tt.id)
		if p.State != store.StateFailed || !strings.Contains(p.Error, tt.want) {
			t.Errorf("%s: state %s error %q, want failed with %q", tt.id, p.State, p.Error, tt.want)
		}
		sum := f.summary(tt.id)
		if !strings.Contains(sum, "failed: ") {
			t.Errorf("%s: summary does not say it failed:\n%s", tt.id, sum)
		}
	}
	if got := f.read("src/app.py"); got != "unchanged\n" {
		t.Errorf("file after failed patches = %q", got)
	}
	if data, _ := os.ReadFile(outside); string(data) != "secret\n" {
		t.Errorf("outside file = %q, want untouched", data)
	}
}

func TestRevert(t *testing.T) {
	f := newFixture(t)
	orig := "line one\r\nno newline at end é"
	f.write("a.txt", orig, 0o600)
	f.submit("R1", "a.txt", "one", "uno")
	f.run()
	if p := f.settle("R1"); p.State != store.StateApplied {
		t.Fatalf("state = %s %s", p.State, p.Error)
	}
	p, err := f.worker.Revert(context.Background(), "R1")
	if err != nil || p.State != store.StateReverted {
		t.Fatalf("Revert = %s, %v", p.State, err)
	}
	if got := f.read("a.txt"); got != orig {
		t.Errorf("after revert = %q, want %q byte for byte", got, orig)
	}
	if fi, _ := os.Stat(filepath.Join(f.ws, "a.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after revert = %v, want 0600", fi.Mode().Perm())
	}
	if _, err := f.worker.Revert(context.Background(), "R1"); !errors.Is(err, ErrNotApplied) {
		t.Errorf("second Revert = %v, want ErrNotApplied", err)
	}

	f.submit("R2", "a.txt", "one", "uno")
	if p := f.settle("R2"); p.State != store.StateApplied {
		t.Fatalf("R2 state = %s %s", p.State, p.Error)
	}
	f.write("a.txt", "someone edited it\n", 0o600)
	if _, err := f.worker.Revert(context.Background(), "R2"); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "a.txt") {
		t.Errorf("Revert after an edit = %v, want ErrChanged naming a.txt", err)
	}
	if got := f.read("a.txt"); got != "someone edited it\n" {
		t.Errorf("refused revert touched the file: %q", got)
	}
}

// TestRecoverAfterCrash: a patch left "applying" is settled by the file's
// content: written already → applied once; not written → applied now;
// changed by someone → failed. Never applied twice.
func TestRecoverAfterCrash(t *testing.T) {
	tests := []struct {
		name      string
		onDisk    string // file content at restart
		wantState store.State
		wantFile  string
	}{
		{name: "written before the crash", onDisk: "aa\n", wantState: store.StateApplied, wantFile: "aa\n"},
		{name: "not written", onDisk: "a\n", wantState: store.StateApplied, wantFile: "aa\n"},
		{name: "changed by someone", onDisk: "zzz\n", wantState: store.StateFailed, wantFile: "zzz\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.write("f.txt", "a\n", 0o644)
			f.submit("C1", "f.txt", "a", "aa")
			ctx := context.Background()
			if err := f.store.PutBlob("C1", blobName(0), []byte("a\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Update(ctx, "C1", func(p *store.Patch) error {
				p.State, p.StartedAt = store.StateApplying, time.Now()
				p.Files = []store.FileChange{{Path: "f.txt", OldHash: hash([]byte("a\n")), NewHash: hash([]byte("aa\n")), OldMode: 0o644, Existed: true}}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			f.write("f.txt", tt.onDisk, 0o644)
			f.store.Close() // the crash: the next open finds C1 applying
			f.open()
			f.run()
			p := f.settle("C1")
			if p.State != tt.wantState {
				t.Errorf("state = %s (%s), want %s", p.State, p.Error, tt.wantState)
			}
			if got := f.read("f.txt"); got != tt.wantFile {
				t.Errorf("file = %q, want %q", got, tt.wantFile)
			}
		})
	}
}

// summaryPath is where a patch's summary is: under the UTC date it was
// received (summaries/YYYY/MM/DD/<id>.md).
func (f *fixture) summaryPath(id string) string {
	p, _ := f.store.Get(id)
	return filepath.Join(f.dir, "summaries", p.ReceivedAt.UTC().Format("2006/01/02"), id+".md")
}

// summary waits for a patch's summary: it is written just after the outcome
// is recorded.
func (f *fixture) summary(id string) string {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(f.summaryPath(id)); err == nil {
			return string(data)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no summary for %s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStopLeavesBacklog: a stop finishes the patch in progress and leaves
// the rest queued for the next start, rather than applying the whole
// backlog first (which made `patchd stop` time out under load).
func TestStopLeavesBacklog(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "VERSION = \"0\"\n", 0o644)
	const n = 200
	for i := range n {
		f.submit(fmt.Sprintf("P%d", i), "src/app.py", `VERSION = "[^"]*"`, fmt.Sprintf(`VERSION = "%d"`, i))
	}
	f.run()
	f.settle("P0")
	stopped := time.Now()
	f.stop()
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("stop took %s with a backlog, want it to finish only the patch in progress", d)
	}
	if st := f.store.Stats(); st.Queued == 0 || st.Applying != 0 {
		t.Errorf("after a stop with %d patches queued: %+v, want some still queued and none applying", n, st)
	}
}

// TestRepairSummaries: summaries are written without fsync, so a crash may
// lose them or leave them empty; the next start rewrites those of recently
// finished patches and leaves the others alone.
func TestRepairSummaries(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "a = 1\n", 0o644)
	f.submit("ok", "src/app.py", "a = 1", "a = 2")
	f.submit("bad", "src/app.py", "absent", "x")
	f.submit("fine", "src/app.py", "a = 2", "a = 3")
	f.run()
	f.settle("fine")
	f.stop()
	want := map[string]string{}
	for _, id := range []string{"ok", "bad", "fine"} {
		want[id] = f.summary(id)
	}
	os.Remove(f.summaryPath("ok"))                                    // lost
	os.WriteFile(f.summaryPath("bad"), nil, 0o644)                    // name without content
	fineInfo, _ := os.Stat(f.summaryPath("fine"))                     // intact: not rewritten
	os.Chtimes(f.summaryPath("fine"), time.Time{}, time.Unix(1e9, 0)) // marks it
	f.store.Close()
	f.open()
	f.run()
	f.worker.RepairSummaries() // the daemon calls it once it serves
	for id, w := range want {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := os.ReadFile(f.summaryPath(id))
			if string(got) == w {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("summary of %s after a restart = %q, want %q", id, got, w)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if fi, _ := os.Stat(f.summaryPath("fine")); fi == nil || !fi.ModTime().Equal(time.Unix(1e9, 0)) || fi.Size() != fineInfo.Size() {
		t.Errorf("an intact summary was rewritten at start")
	}
}

// TestRepairRunsAside: the summary repair after a start holds up neither
// the worker nor the store: while it is in the middle of a rewrite, a new
// patch is applied and the store answers (issue 13: with a long history,
// the repair held the store's lock that /health needed, and the worker's
// for its whole length).
func TestRepairRunsAside(t *testing.T) {
	f := newFixture(t)
	f.write("src/app.py", "a = 1\n", 0o644)
	f.submit("ok", "src/app.py", "a = 1", "a = 2")
	f.submit("bad", "src/app.py", "absent", "x")
	f.run()
	f.settle("bad")
	f.stop()
	os.Remove(f.summaryPath("ok"))
	os.Remove(f.summaryPath("bad"))
	f.store.Close()
	f.open()
	entered, release := make(chan string, 2), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the fixture's stop, which waits for the worker
	f.worker.repairing = func(id string) {
		entered <- id
		<-release
	}
	repaired := make(chan struct{})
	go func() {
		f.worker.RepairSummaries()
		close(repaired)
	}()
	<-entered // the repair is under way, and waits
	f.submit("next", "src/app.py", "a = 2", "a = 3")
	f.run()
	if p := f.settle("next"); p.State != store.StateApplied {
		t.Errorf("patch sent during the repair: %s %s, want applied", p.State, p.Error)
	}
	if st := f.store.Stats(); st.Applied != 2 || st.Failed != 1 {
		t.Errorf("Stats during the repair = %+v", st)
	}
	letGo()
	<-repaired
	for _, id := range []string{"ok", "bad", "next"} {
		if got, want := f.summary(id), f.storedSummary(id); got != want {
			t.Errorf("summary of %s after the repair = %q, want %q", id, got, want)
		}
	}
}

// storedSummary is the summary of the patch as the store has it now.
func (f *fixture) storedSummary(id string) string {
	p, _ := f.store.Get(id)
	return Summary(p)
}

// TestRevertAfterRestart: the backups a revert needs survive a restart,
// whether they were small enough to travel in the journal record or were
// written as blob files.
func TestRevertAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		inline bool
	}{{"small file, backup in the journal", 100, true}, {"large file, backup as a blob file", inlineBlobMax + 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			orig := "MARKER\n" + strings.Repeat("x", tc.size-7)
			f.write("a.txt", orig, 0o640)
			f.submit("R1", "a.txt", "MARKER", "CHANGED")
			f.run()
			if p := f.settle("R1"); p.State != store.StateApplied {
				t.Fatalf("state = %s %s", p.State, p.Error)
			}
			f.stop()
			f.store.Close()
			f.open()
			if _, err := f.worker.Revert(context.Background(), "R1"); err != nil {
				t.Fatalf("Revert after a restart: %v", err)
			}
			if got := f.read("a.txt"); got != orig {
				t.Errorf("after revert the file is %d bytes starting %q, want the original %d bytes", len(got), got[:min(len(got), 10)], len(orig))
			}
			_, err := os.Stat(filepath.Join(f.dir, "queue", "blobs", "R1"))
			if hasFile := err == nil; hasFile == tc.inline {
				t.Errorf("blob directory for R1 exists: %v, want %v", hasFile, !tc.inline)
			}
		})
	}
}

// TestYieldBeforeEachPatch: the worker calls its yield function before
// every patch and applies nothing while it waits.
func TestYieldBeforeEachPatch(t *testing.T) {
	f := newFixture(t)
	f.write("a.txt", "v0\n", 0o644)
	gate := make(chan struct{})
	calls := make(chan struct{}, 10)
	f.worker.SetYield(func(ctx context.Context) {
		calls <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
	})
	f.submit("Y1", "a.txt", "v0", "v1")
	f.submit("Y2", "a.txt", "v1", "v2")
	f.run()
	<-calls
	if p, _ := f.store.Get("Y1"); p.State != store.StateQueued {
		t.Errorf("Y1 is %s while the worker yields, want queued", p.State)
	}
	close(gate)
	f.settle("Y2")
	if got := f.read("a.txt"); got != "v2\n" {
		t.Errorf("a.txt = %q, want both patches applied", got)
	}
	if n := len(calls); n < 1 {
		t.Errorf("yield called %d more times for the second patch, want at least 1", n)
	}
}
