package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadResult counts what a load generator saw.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errors     []string
	acked      []string
}

func (l *loadResult) fail(format string, args ...any) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < 10 {
		l.errors = append(l.errors, time.Now().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
	}
}

// load runs workers that alternate webhook posts and health checks against
// address over keep-alive connections, until stop is closed. Nothing is
// retried: every error counts.
func load(t *testing.T, e *tenv, address string, workers int, stop <-chan struct{}) *loadResult {
	t.Helper()
	res := &loadResult{}
	token := e.token()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{base: "http://" + address, token: token, http: &http.Client{Timeout: 30 * time.Second}}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					id := fmt.Sprintf("load-%d-%d", w, i)
					code, body, err := c.do("POST", "/webhook", []byte(fmt.Sprintf(
						`{"id":%q,"role":"load","target_file":"load.txt","patch":{"pattern":"^x","replacement":"x"}}`, id)))
					switch {
					case err != nil:
						res.fail("POST %s: %v", id, err)
					case code != http.StatusAccepted:
						res.fail("POST %s: %d %s", id, code, body)
					default:
						res.ok.Add(1)
						res.mu.Lock()
						res.acked = append(res.acked, id)
						res.mu.Unlock()
					}
				} else {
					code, _, err := getHealth(address)
					if err != nil || code != 200 {
						res.fail("GET /health: %d %v", code, err)
					} else {
						res.ok.Add(1)
					}
				}
			}
		}()
	}
	t.Cleanup(wg.Wait)
	return res
}

// TestRestartUnderLoad: ten `patchd restart`s while clients keep sending;
// no request fails, the port never changes, every acknowledged patch is
// kept, and each restart leaves exactly one daemon.
func TestRestartUnderLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "load.txt"), []byte("x\n"), 0o644)
	pid, r := e.start("--log-level", "debug")
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	stop := make(chan struct{})
	res := load(t, e, st.Address, 8, stop)
	waitFor(t, 10*time.Second, "load to flow", func() bool { return res.ok.Load() > 50 })

	pids := map[int]bool{pid: true}
	for i := range 10 {
		before := res.ok.Load()
		r := e.run("restart")
		if r.code != 0 {
			t.Fatalf("restart %d: %s", i, r)
		}
		newPID := pidOf(r.stdout)
		if pids[newPID] || !strings.Contains(r.stdout, st.Address) {
			t.Fatalf("restart %d: %s, want a new pid on the same address %s", i, r, st.Address)
		}
		pids[newPID] = true
		waitFor(t, 10*time.Second, "requests served by the new daemon", func() bool { return res.ok.Load() > before+20 })
		if got := e.pids(); len(got) != 1 || got[0] != newPID {
			t.Errorf("after restart %d: patchd processes %v, want only %d", i, got, newPID)
		}
	}
	close(stop)
	time.Sleep(0) // let workers observe stop; Cleanup waits for them
	t.Logf("%d requests succeeded, %d failed across 10 restarts", res.ok.Load(), res.failed.Load())
	if n := res.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during restarts, want 0; first: %v", n, res.errors)
		logData, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
		t.Logf("log:\n%s", logData)
	}

	st2, _ := e.status()
	cl := e.client(st2.Address)
	res.mu.Lock()
	acked := append([]string(nil), res.acked...)
	res.mu.Unlock()
	for _, id := range acked {
		if _, code := cl.patch(t, id); code != 200 {
			t.Errorf("acknowledged %s: GET = %d after restarts, want it kept", id, code)
		}
	}
}

// TestRestartFailureKeepsServing: when the binary on disk cannot start, the
// old daemon keeps serving and restart exits 1 with the reason.
func TestRestartFailureKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A copy of the binary that we can break.
	bin := filepath.Join(t.TempDir(), "patchd")
	data, err := os.ReadFile(patchdBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// A child forked by a parallel test while the copy was open for
	// writing holds that descriptor until it execs, and exec of the copy
	// fails meanwhile with ETXTBSY: try again.
	for attempt := 0; ; attempt++ {
		start := e.command("start", "--port", "0")
		start.Path = bin
		out, err := start.CombinedOutput()
		if err == nil {
			break
		}
		if attempt < 50 && errors.Is(err, syscall.ETXTBSY) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.Fatalf("start: %v: %s", err, out)
	}
	st, _ := e.status()
	t.Cleanup(func() {
		e.run("stop")
		// tenv.pids does not know this copy of the binary.
		syscall.Kill(st.PID, syscall.SIGKILL)
	})

	// An old error in the shared log, from something else entirely: the
	// failed restart must quote its successor, not this.
	logf, err := os.OpenFile(filepath.Join(e.stateDir(), "logs", "patchd.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(logf, `{"time":"2026-01-01T00:00:00Z","level":"ERROR","msg":"planted old error","err":"planted old error"}`)
	logf.Close()

	// Replace the binary on disk with one that fails at once.
	os.Remove(bin)
	os.WriteFile(bin, []byte("#!/bin/sh\necho broken build: missing symbol >&2\nexit 7\n"), 0o755)
	r := e.run("restart")
	if r.code != 1 || !strings.Contains(r.stderr, "keeps serving") {
		t.Errorf("restart into a broken binary: %s, want exit 1 saying the old one keeps serving", r)
	}
	if !strings.Contains(r.stderr, "broken build: missing symbol") || strings.Contains(r.stderr, "planted") {
		t.Errorf("restart into a broken binary: %s, want the successor's own output quoted, not an old log line", r)
	}
	now, _ := e.status()
	if now.PID != st.PID || !now.Running {
		t.Errorf("after a failed restart: status %+v, want pid %d still running", now, st.PID)
	}
	if code, _, err := getHealth(st.Address); err != nil || code != 200 {
		t.Errorf("health after a failed restart: %d %v", code, err)
	}
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	code, body, err := e.client(st.Address).do("POST", "/webhook", seedBlock("after-failed-restart", "a.txt"))
	if err != nil || code != 202 {
		t.Errorf("webhook after a failed restart: %d %s %v", code, body, err)
	}
}

// TestSIGHUP: SIGHUP to a foreground `patchd run` restarts it in place (the
// process stays, as the keeper of its successor); SIGHUP to a standby does
// nothing; the terminal's SIGINT then stops everything.
func TestSIGHUP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	active, _ := e.startRun("--port", "0")
	st := e.waitRunning(10 * time.Second)
	standby, out := e.startRun("--port", "0")
	waitFor(t, 10*time.Second, "the standby", func() bool { return strings.Contains(out.String(), "standing by") })

	standby.Process.Signal(syscall.SIGHUP)
	active.Process.Signal(syscall.SIGHUP)
	var now status
	waitFor(t, 10*time.Second, "a restart after SIGHUP", func() bool {
		now, _ = e.status()
		return now.Running && now.PID != 0 && now.PID != st.PID
	})
	if now.PID == standby.Process.Pid || now.Address != st.Address {
		t.Errorf("after SIGHUP: %+v, want a new daemon (not the standby) on %s", now, st.Address)
	}
	for _, p := range []*exec.Cmd{active, standby} {
		if err := p.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("pid %d gone after SIGHUP, want it alive (keeper or standby)", p.Process.Pid)
		}
	}
	standby.Process.Signal(syscall.SIGTERM)
	exitCode(t, standby, 10*time.Second)
	// SIGINT to the keeper stops the daemon it handed over to.
	active.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, active, 20*time.Second); code != 0 {
		t.Errorf("keeper exit code = %d, want 0", code)
	}
	waitFor(t, 10*time.Second, "every patchd to exit", func() bool { return len(e.pids()) == 0 })
}
