package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultyFile fails journal operations on demand.
type faultyFile struct {
	journalFile
	mu        sync.Mutex
	writeErrs []error // consumed one per WriteAt; nil entries succeed
	partial   int     // bytes a failing WriteAt still writes
	syncErrs  []error
	truncErrs []error
	// syncGate, if set, holds every Sync until it is closed; syncEntered
	// hears of each Sync that waits.
	syncGate    chan struct{}
	syncEntered chan struct{}
}

func pop(errs *[]error) error {
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	err, partial := pop(&f.writeErrs), f.partial
	f.mu.Unlock()
	if err != nil {
		n, _ := f.journalFile.WriteAt(b[:min(partial, len(b))], off)
		return n, &os.PathError{Op: "write", Path: "/somewhere/journal", Err: err}
	}
	return f.journalFile.WriteAt(b, off)
}

func (f *faultyFile) Sync() error { return f.sync(f.journalFile.Sync) }

func (f *faultyFile) Datasync() error { return f.sync(f.journalFile.Datasync) }

func (f *faultyFile) sync(real func() error) error {
	f.mu.Lock()
	err, gate, entered := pop(&f.syncErrs), f.syncGate, f.syncEntered
	f.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: "/somewhere/journal", Err: err}
	}
	return real()
}

func (f *faultyFile) Truncate(size int64) error {
	f.mu.Lock()
	err := pop(&f.truncErrs)
	f.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "truncate", Path: "/somewhere/journal", Err: err}
	}
	return f.journalFile.Truncate(size)
}

func (f *faultyFile) set(fn func(f *faultyFile)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func openFaulty(t *testing.T, dir string) (*Store, *faultyFile) {
	t.Helper()
	ff := &faultyFile{}
	s := openTest(t, dir, Options{wrapJournal: func(j journalFile) journalFile {
		ff.journalFile = j
		return ff
	}})
	return s, ff
}

// checkJournalClean asserts that the journal holds exactly the good
// records, with nothing after them but the zeros the store writes ahead.
func checkJournalClean(t *testing.T, dir string, wantRecords int) {
	t.Helper()
	path := activeSegment(t, dir)
	offs := recordOffsets(t, path)
	if len(offs) != wantRecords {
		t.Errorf("journal has %d records, want %d", len(offs), wantRecords)
	}
	f, _ := os.Open(path)
	defer f.Close()
	fi, _ := f.Stat()
	res, _ := scanJournal(f, int64(len(fileHeader)), fi.Size(), "journal", testLogger(t), func(record, int64) error { return nil })
	if res.end != fi.Size() && !res.zeroTail {
		t.Errorf("journal is %d bytes but its records end at %d, and not only zeros follow", fi.Size(), res.end)
	}
}

func TestWriteFailures(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(f *faultyFile)
		wantErr   error
		wantMsg   string
		failAfter int // submissions after the first failure that fail too
	}{
		{
			name:    "disk full mid-write",
			fault:   func(f *faultyFile) { f.writeErrs, f.partial = []error{syscall.ENOSPC}, 25 },
			wantErr: syscall.ENOSPC,
			wantMsg: "store unavailable: write 001/seg/00000001.jnl: no space left on device",
		},
		{
			name:    "quota",
			fault:   func(f *faultyFile) { f.writeErrs = []error{syscall.EDQUOT} },
			wantErr: syscall.EDQUOT,
			wantMsg: "store unavailable: write 001/seg/00000001.jnl: ",
		},
		{
			name:    "read-only",
			fault:   func(f *faultyFile) { f.writeErrs = []error{syscall.EROFS} },
			wantErr: syscall.EROFS,
			wantMsg: "read-only file system",
		},
		{
			name:    "fsync I/O error",
			fault:   func(f *faultyFile) { f.syncErrs = []error{syscall.EIO} },
			wantErr: syscall.EIO,
			wantMsg: "store unavailable: sync 001/seg/00000001.jnl: input/output error",
		},
		{
			name: "write fails and so does the truncation",
			fault: func(f *faultyFile) {
				f.writeErrs, f.partial = []error{syscall.EIO}, 40
				f.truncErrs = []error{syscall.EIO, syscall.EIO}
			},
			wantErr:   syscall.EIO,
			wantMsg:   "store unavailable: ",
			failAfter: 1, // refused without writing: the tail is uncertain
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "001")
			s, ff := openFaulty(t, dir)
			ctx := context.Background()
			mustSubmit(t, s, "good", "good body")
			ff.set(tt.fault)

			_, _, err := s.Submit(ctx, Patch{ID: "bad"}, []byte("bad body"))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Submit during fault = %v, want ErrUnavailable and %v, containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "/somewhere") {
				t.Errorf("error %q names the absolute path", err)
			}
			if _, ok := s.Get("bad"); ok {
				t.Errorf("Get(bad) found a patch whose write failed")
			}
			for i := range tt.failAfter {
				if _, _, err := s.Submit(ctx, Patch{ID: "bad"}, []byte("bad body")); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Submit %d after the fault = %v, want ErrUnavailable", i+1, err)
				}
			}
			p, created, err := s.Submit(ctx, Patch{ID: "bad"}, []byte("bad body"))
			if err != nil || !created {
				t.Fatalf("Submit after the fault = created %v, %v; want created", created, err)
			}
			if p.Seq != 2 {
				t.Errorf("Seq after failed batches = %d, want 2 (failed batches give their numbers back)", p.Seq)
			}
			if _, err := s.Update(ctx, "good", func(p *Patch) error { p.State = StateApplying; return nil }); err != nil {
				t.Errorf("Update after the fault = %v", err)
			}
			s.Close()
			checkJournalClean(t, dir, 3)

			s = openTest(t, dir, Options{})
			if got, _ := s.List("", 10, ""); !slices.Equal(ids(got), []string{"bad", "good"}) {
				t.Errorf("after reopen List = %v, want [bad good]", ids(got))
			}
			if b, err := s.Body("bad"); err != nil || string(b) != "bad body" {
				t.Errorf("Body(bad) = %q, %v", b, err)
			}
		})
	}
}

func TestUpdateFailureKeepsState(t *testing.T) {
	s, ff := openFaulty(t, t.TempDir())
	mustSubmit(t, s, "p", "b")
	ff.set(func(f *faultyFile) { f.syncErrs = []error{syscall.ENOSPC} })
	if _, err := s.Update(context.Background(), "p", func(p *Patch) error { p.State = StateApplying; return nil }); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Update during fault = %v, want ErrUnavailable", err)
	}
	if p, _ := s.Get("p"); p.State != StateQueued {
		t.Errorf("state after failed update = %q, want queued", p.State)
	}
	mustUpdate(t, s, "p", setState(StateApplying))
}

func TestContextEnds(t *testing.T) {
	s, ff := openFaulty(t, t.TempDir())
	gate := make(chan struct{})
	entered := make(chan struct{}, 10)
	ff.set(func(f *faultyFile) { f.syncGate, f.syncEntered = gate, entered })

	// A's batch is held inside fsync.
	aDone := make(chan error)
	go func() {
		_, _, err := s.Submit(context.Background(), Patch{ID: "A"}, []byte("a"))
		aDone <- err
	}()
	<-entered

	// B is queued behind it; its context ends before the committer takes
	// it, so it is withdrawn.
	ctx, cancel := context.WithCancel(context.Background())
	bDone := make(chan error)
	go func() {
		_, _, err := s.Submit(ctx, Patch{ID: "B"}, []byte("b"))
		bDone <- err
	}()
	waitPending(t, s, 1)
	cancel()
	if err := <-bDone; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "not recorded") {
		t.Errorf("withdrawn Submit = %v, want context.Canceled, not recorded", err)
	}
	close(gate)
	if err := <-aDone; err != nil {
		t.Errorf("Submit(A) = %v", err)
	}
	ff.set(func(f *faultyFile) { f.syncGate = nil })
	if _, ok := s.Get("B"); ok {
		t.Errorf("withdrawn patch B was recorded")
	}

	// C's context ends while its own batch is in fsync: it may land, and
	// here it does.
	gate = make(chan struct{})
	ff.set(func(f *faultyFile) { f.syncGate = gate })
	ctx, cancel = context.WithCancel(context.Background())
	cDone := make(chan error)
	go func() {
		_, _, err := s.Submit(ctx, Patch{ID: "C"}, []byte("c"))
		cDone <- err
	}()
	<-entered
	cancel()
	if err := <-cDone; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "may still be recorded") {
		t.Errorf("Submit cancelled during fsync = %v, want context.Canceled, may still be recorded", err)
	}
	close(gate)
	ff.set(func(f *faultyFile) { f.syncGate = nil })
	// A retry waits for the outcome and finds the patch.
	if p, created, err := s.Submit(context.Background(), Patch{ID: "C"}, []byte("c")); err != nil || created || p.ID != "C" {
		t.Errorf("retried Submit(C) = %v, created %v, %v; want the stored patch", p.ID, created, err)
	}
	mustSubmit(t, s, "B", "b")
}

// waitPending waits until n records wait for the committer.
func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.mu.Lock()
		got := len(s.pending)
		s.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("never saw %d pending records", n)
}

const crashEnv = "PATCHD_STORE_CRASH_DIR"

// TestCrash kills a process that is submitting patches from 16 goroutines
// with SIGKILL and checks that every patch it acknowledged survived.
func TestCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	cmd.Stderr = tlogWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	acked := make(map[string]string) // id → state the child saw acknowledged
	record := func(line string) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "ACK" {
			acked[f[1]] = f[2]
		}
	}
	timeout := time.After(2 * time.Minute)
	for len(acked) < 600 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited after %d acknowledgements: %v", len(acked), cmd.Wait())
			}
			record(line)
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("child acknowledged only %d patches in time", len(acked))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Whatever the child printed before it died was acknowledged too.
	for line := range lines {
		record(line)
	}
	cmd.Wait()

	s := openTest(t, dir, Options{})
	st := s.Stats()
	t.Logf("child acknowledged %d patches; store holds %d patches (%d queued, %d applying)", len(acked), st.Total, st.Queued, st.Applying)
	for id, state := range acked {
		p, ok := s.Get(id)
		if !ok {
			t.Errorf("acknowledged patch %s missing after kill -9", id)
			continue
		}
		if state == "applying" && p.State != StateApplying {
			t.Errorf("patch %s: state %q, want the acknowledged applying", id, p.State)
		}
		if body, err := s.Body(id); err != nil || string(body) != crashBody(id) {
			t.Errorf("Body(%s) = %q, %v; want %q", id, body, err, crashBody(id))
		}
	}
	// The store keeps working after the crash.
	mustSubmit(t, s, "after-crash", "x")
}

func crashBody(id string) string { return strings.Repeat(id+";", 1+len(id)%7*20) }

// crashChild submits until killed, printing each acknowledgement the
// moment it has it. It gives up after a minute in case the parent died.
func crashChild(dir string) {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	time.AfterFunc(time.Minute, func() { os.Exit(3) })
	ack := func(id, state string) {
		os.Stdout.WriteString("ACK " + id + " " + state + "\n")
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				if _, _, err := s.Submit(ctx, Patch{ID: id}, []byte(crashBody(id))); err != nil {
					fmt.Fprintln(os.Stderr, "submit:", err)
					os.Exit(2)
				}
				ack(id, "queued")
				if i%5 == 0 {
					if _, err := s.Update(ctx, id, func(p *Patch) error { p.State = StateApplying; return nil }); err != nil {
						fmt.Fprintln(os.Stderr, "update:", err)
						os.Exit(2)
					}
					ack(id, "applying")
				}
			}
		})
	}
	wg.Wait()
}

func benchSubmit(b *testing.B, s *Store, clients int) {
	body := []byte(strings.Repeat(`{"id":"x","role":"ui_patch","target_file":"src/app.py","patch":{}}`, 16)) // ~1 KiB
	var n atomic.Int64
	ctx := context.Background()
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((clients + procs - 1) / procs)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "b" + strconv.FormatInt(n.Add(1), 10)
			if _, _, err := s.Submit(ctx, Patch{ID: id}, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportBatch(b, s)
}

func reportBatch(b *testing.B, s *Store) {
	st := s.Stats()
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/batch")
	}
}

// BenchmarkSubmitParallel measures durable submissions (real fsync) from
// as many concurrent clients as an HTTP server under load would have.
func BenchmarkSubmitParallel(b *testing.B) {
	for _, clients := range []int{16, 64} {
		for _, linger := range []bool{true, false} {
			b.Run(fmt.Sprintf("clients=%d/linger=%v", clients, linger), func(b *testing.B) {
				s, err := Open(b.TempDir(), Options{noLinger: !linger})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				benchSubmit(b, s, clients)
			})
		}
	}
}

// BenchmarkSubmitSerial is one client: every submission waits for its own
// fsync, the floor group commit improves on.
func BenchmarkSubmitSerial(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := []byte(strings.Repeat("x", 1024))
	b.SetBytes(int64(len(body)))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := s.Submit(ctx, Patch{ID: "s" + strconv.Itoa(i)}, body); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportBatch(b, s)
}

// TestNextAfterFailedUpdate: when the update recording how an applying
// patch ended cannot be written (disk full), Next hands the patch out
// again, so the worker retries; it does not stay applying until a restart.
func TestNextAfterFailedUpdate(t *testing.T) {
	s, ff := openFaulty(t, t.TempDir())
	ctx := context.Background()
	next := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next = %v", err)
		}
		return p.ID + ":" + string(p.State)
	}
	mustSubmit(t, s, "a", "a")
	mustSubmit(t, s, "b", "b")
	mustUpdate(t, s, "a", setState(StateApplying))
	if got := next(); got != "b:queued" {
		t.Fatalf("Next while a is applying = %s, want b:queued", got)
	}

	ff.set(func(f *faultyFile) { f.writeErrs = []error{syscall.ENOSPC} })
	if _, err := s.Update(ctx, "a", func(p *Patch) error { p.State = StateApplied; return nil }); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Update on a full disk = %v, want ErrUnavailable", err)
	}
	for range 2 { // not claimed: the same again
		if got := next(); got != "a:applying" {
			t.Fatalf("Next after the failed update = %s, want a:applying", got)
		}
	}
	mustUpdate(t, s, "a", setState(StateApplied))
	if got := next(); got != "b:queued" {
		t.Fatalf("Next after a is applied = %s, want b:queued", got)
	}

	// A failed move to applying leaves the patch queued, and queued it is
	// handed out.
	ff.set(func(f *faultyFile) { f.writeErrs = []error{syscall.ENOSPC} })
	if _, err := s.Update(ctx, "b", func(p *Patch) error { p.State = StateApplying; return nil }); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Update on a full disk = %v, want ErrUnavailable", err)
	}
	if got := next(); got != "b:queued" {
		t.Fatalf("Next after the failed move = %s, want b:queued", got)
	}
}

// BenchmarkSubmitEvents is BenchmarkSubmitParallel with the event log on
// and subscribers reading every event, to show what they cost the
// committer.
func BenchmarkSubmitEvents(b *testing.B) {
	for _, subs := range []int{0, 4} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(filepath.Join(dir, "queue"), Options{EventsPath: filepath.Join(dir, "events.jsonl")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for range subs {
				sub, err := s.Subscribe(b.Context(), 0)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range sub.C {
					}
				}()
			}
			benchSubmit(b, s, 16)
		})
	}
}
