package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRaceBuildFlag(t *testing.T) {
	// Not a feature test: documents that the binary under test carries the
	// race detector whenever the tests do.
	t.Logf("race detector in the binary under test: %v", raceEnabled)
}

// TestConcurrentStart: fifty `patchd start` at the same moment yield one
// daemon with one listener, fifty exit codes 0 and fifty outputs naming the
// same pid.
func TestConcurrentStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 50
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.run("start", "--port", "0")
		}()
	}
	wg.Wait()
	pid := pidOf(results[0].stdout)
	started := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("start #%d: %s, want exit 0", i, r)
		}
		if got := pidOf(r.stdout); got != pid || got == 0 {
			t.Errorf("start #%d printed pid %d, want %d (%s)", i, got, pid, r)
		}
		if strings.Contains(r.stdout, "patchd started") {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d starts said they started the daemon, want exactly 1", started)
	}
	pids := e.pids()
	if len(pids) != 1 || pids[0] != pid {
		t.Fatalf("patchd processes for the workspace = %v, want only %d", pids, pid)
	}
	if got := listeners(t, pids); got != 1 {
		t.Errorf("listening TCP sockets of the daemon = %d, want 1", got)
	}
	st := e.waitRunning(5 * time.Second)
	if st.PID != pid {
		t.Errorf("status pid = %d, want %d", st.PID, pid)
	}
	if code, body, err := getHealth(st.Address); err != nil || code != 200 || body["status"] != "ok" {
		t.Errorf("GET /health = %d %v %v, want 200 ok", code, body, err)
	}
}

// TestKill9ThenStart: nothing stale survives kill -9; start works at once.
func TestKill9ThenStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pid, r := e.start()
	if r.code != 0 || pid == 0 {
		t.Fatalf("start: %s", r)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the killed daemon to disappear", func() bool { return len(e.pids()) == 0 })

	// The state file and socket the dead daemon left behind fool nothing.
	if _, err := os.Stat(e.stateDir() + "/patchd.json"); err != nil {
		t.Logf("state file after kill -9: %v", err)
	}
	st, r := e.status()
	if r.code != 3 || st.Running {
		t.Errorf("status after kill -9: %s, want exit 3 not running", r)
	}
	pid2, r := e.start()
	if r.code != 0 || pid2 == 0 || pid2 == pid || !strings.Contains(r.stdout, "patchd started") {
		t.Fatalf("start after kill -9: %s, want a new daemon", r)
	}
	if h := e.run("health"); h.code != 0 {
		t.Errorf("health after restart: %s, want exit 0", h)
	}
}

// TestFallbackPort: a foreign process on the port makes patchd use the
// fallback, report it, and name the holder in its log.
func TestFallbackPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	busy, holder := foreignHolder(t)
	fallback := freePort(t)
	r := e.run("start", "--port", fmt.Sprint(busy), "--fallback-port", fmt.Sprint(fallback))
	if r.code != 0 {
		t.Fatalf("start with a busy port: %s", r)
	}
	st, _ := e.status()
	if st.Port != fallback || st.Address != fmt.Sprintf("127.0.0.1:%d", fallback) {
		t.Errorf("status --json port, address = %d, %s; want the fallback %d", st.Port, st.Address, fallback)
	}
	log, err := os.ReadFile(e.stateDir() + "/logs/patchd.log")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("pid %d", holder.Process.Pid); !strings.Contains(string(log), want) {
		t.Errorf("log does not name the port's holder (%s):\n%s", want, log)
	}
}

// TestAllPortsBusy: exit 4 naming each port, for run and for start.
func TestAllPortsBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, _ := foreignHolder(t)
	b, _ := foreignHolder(t)
	ports := []string{"--port", fmt.Sprint(a), "--fallback-port", fmt.Sprint(b)}
	for _, cmd := range []string{"run", "start"} {
		r := e.run(append([]string{cmd}, ports...)...)
		out := r.stdout + r.stderr
		if r.code != 4 {
			t.Errorf("%s with every port busy: %s, want exit 4", cmd, r)
		}
		for _, p := range []int{a, b} {
			if !strings.Contains(out, fmt.Sprintf("%d in use", p)) {
				t.Errorf("%s output does not name busy port %d: %s", cmd, p, out)
			}
		}
	}
	if pids := e.pids(); len(pids) != 0 {
		t.Errorf("patchd processes left after exit 4: %v", pids)
	}
}

// TestStandbyTakeover: a second `run` waits unbound and takes over when the
// active daemon is killed with -9.
func TestStandbyTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	active, _ := e.startRun("--port", "0")
	st := e.waitRunning(10 * time.Second)
	if st.PID != active.Process.Pid {
		t.Fatalf("status pid = %d, want the first run %d", st.PID, active.Process.Pid)
	}
	standby, out := e.startRun("--port", "0")
	waitFor(t, 10*time.Second, "the standby to say it stands by", func() bool {
		return strings.Contains(out.String(), "standing by")
	})
	if n := listeners(t, []int{standby.Process.Pid}); n != 0 {
		t.Errorf("standby holds %d listening sockets, want 0", n)
	}
	if r := e.run("run", "--port", "0", "--if-running", "exit"); r.code != 5 {
		t.Errorf("run --if-running=exit while active: %s, want exit 5", r)
	}

	active.Process.Signal(syscall.SIGKILL)
	var now status
	waitFor(t, 10*time.Second, "the standby to take over", func() bool {
		now, _ = e.status()
		return now.Running && now.PID == standby.Process.Pid
	})
	if code, _, err := getHealth(now.Address); err != nil || code != 200 {
		t.Errorf("health after takeover: %d %v", code, err)
	}
}

// TestSignals: SIGINT (PM2) and SIGTERM (systemd) stop the daemon cleanly
// with exit 0 and release everything; the state file is gone.
func TestSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			cmd, out := e.startRun("--port", "0")
			e.waitRunning(10 * time.Second)
			cmd.Process.Signal(sig)
			if code := exitCode(t, cmd, 15*time.Second); code != 0 {
				t.Errorf("exit code after %s = %d, want 0; output:\n%s", sig, code, out)
			}
			if _, err := os.Stat(e.stateDir() + "/patchd.json"); !os.IsNotExist(err) {
				t.Errorf("state file after a clean stop: %v, want it removed", err)
			}
			if st, r := e.status(); st.Running || r.code != 3 {
				t.Errorf("status after %s: %s, want exit 3", sig, r)
			}
		})
	}
}

// TestExitCodes covers stop, status and health with and without a daemon.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"status"}, 3, "not running"},
		{[]string{"health"}, 3, "not running"},
		{[]string{"stop"}, 0, "not running"},
	}
	for _, tt := range tests {
		if r := e.run(tt.args...); r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
			t.Errorf("%v with no daemon: %s, want exit %d and %q", tt.args, r, tt.code, tt.out)
		}
	}
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	for _, args := range [][]string{{"status"}, {"health"}, {"health", "--json"}, {"status", "--json"}} {
		if r := e.run(args...); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprint(pid)) {
			t.Errorf("%v with a daemon: %s, want exit 0 naming pid %d", args, r, pid)
		}
	}

	// A daemon that does not answer (stopped with SIGSTOP) is unhealthy,
	// and status agrees: it runs (holds the lock), but is not healthy.
	syscall.Kill(pid, syscall.SIGSTOP)
	r = e.run("health")
	rs := e.run("status")
	rj := e.run("status", "--json")
	syscall.Kill(pid, syscall.SIGCONT)
	if r.code != 1 {
		t.Errorf("health of a frozen daemon: %s, want exit 1", r)
	}
	if rs.code != 1 || !strings.Contains(rs.stdout, "not answering") {
		t.Errorf("status of a frozen daemon: %s, want exit 1 saying it does not answer", rs)
	}
	var frozen map[string]any
	if rj.code != 1 || json.Unmarshal([]byte(rj.stdout), &frozen) != nil || frozen["running"] != true || frozen["healthy"] != false {
		t.Errorf("status --json of a frozen daemon: %s, want exit 1 with running true, healthy false", rj)
	}
	e.waitRunning(10 * time.Second)

	if r := e.run("stop"); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Errorf("stop: %s, want exit 0", r)
	}
	// stop returns only once the process is gone (or in the kernel's exit).
	if err := syscall.Kill(pid, 0); err == nil && !exited(pid) {
		t.Errorf("pid %d still alive after stop returned", pid)
	}
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after stop: %s, want exit 3", r)
	}
}

// TestVersionAndUsage: version prints, mistakes exit 2 and say what was wrong.
func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.run("version"); r.code != 0 || !strings.HasPrefix(r.stdout, "patchd ") {
		t.Errorf("version: %s", r)
	}
	if r := e.run("bogus"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "bogus"`) {
		t.Errorf("unknown command: %s, want exit 2 naming it", r)
	}
	if r := e.run("status", "--port", "99999"); r.code != 2 || !strings.Contains(r.stderr, "--port") {
		t.Errorf("bad --port: %s, want exit 2 naming --port", r)
	}
}

// TestPIDFile: --pid-file writes a plain PID file for old watchdogs and
// removes it on a clean stop.
func TestPIDFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pf := e.ws + "/old-watchdog.pid"
	pid, r := e.start("--pid-file", pf)
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	data, err := os.ReadFile(pf)
	if err != nil || strings.TrimSpace(string(data)) != fmt.Sprint(pid) {
		t.Errorf("pid file = %q, %v; want %d", data, err, pid)
	}
	e.run("stop")
	if _, err := os.Stat(pf); !os.IsNotExist(err) {
		t.Errorf("pid file after stop: %v, want removed", err)
	}
}

// TestDrainOnSignal: SIGTERM stops accepting but finishes a request in
// flight (its patch is acknowledged), then exits 0.
func TestDrainOnSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd, out := e.startRun("--port", "0")
	st := e.waitRunning(10 * time.Second)
	conn, finish := e.halfRequest(st.Address, `{"id":"inflight","role":"r","target_file":"a.txt","patch":{"pattern":"a","replacement":"b"}}`)
	defer conn.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	waitRefused(t, st.Address)
	resp, err := finish()
	if err != nil || !strings.HasPrefix(resp, "HTTP/1.1 202") {
		t.Errorf("request in flight during SIGTERM: %q, %v; want 202", resp, err)
	}
	if code := exitCode(t, cmd, 15*time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0; output:\n%s", code, out)
	}
	// The acknowledged patch is there after a restart.
	e.start()
	if r := e.run("patches", "show", "inflight"); r.code != 0 {
		t.Errorf("patches show inflight after restart: %s", r)
	}
}

// TestSecondSignalExitsAtOnce: while a drain waits on a request in flight,
// a second signal ends the process without waiting.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd, _ := e.startRun("--port", "0", "--drain-timeout", "5m")
	st := e.waitRunning(10 * time.Second)
	conn, _ := e.halfRequest(st.Address, `{"id":"stuck","role":"r","target_file":"a.txt","patch":{"pattern":"a","replacement":"b"}}`)
	defer conn.Close()
	cmd.Process.Signal(syscall.SIGINT)
	waitRefused(t, st.Address)
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd, 10*time.Second); code != 1 {
		t.Errorf("exit code after a second signal = %d, want 1", code)
	}
	if held := e.run("status"); held.code != 3 {
		t.Errorf("status after forced exit: %s, want 3 (the kernel released the lock)", held)
	}
}

// TestStartFailureExplains: when the daemon cannot start, `start` exits 1
// with the reason and the last lines of the log, and leaves nothing running.
func TestStartFailureExplains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	notADir := filepath.Join(e.ws, "file.txt")
	os.WriteFile(notADir, []byte("x"), 0o644)
	cmd := exec.Command(patchdBin, "start", "--workspace", notADir, "--state-dir", e.stateDir(), "--port", "0")
	cmd.Env = cleanEnv()
	r := runCmd(t, cmd)
	if r.code != 1 || !strings.Contains(r.stderr, "start failed") || !strings.Contains(r.stderr, "file.txt") || !strings.Contains(r.stderr, "last lines of") {
		t.Errorf("start with a file as workspace: %s, want exit 1 with the reason naming it and the log tail", r)
	}
	if held, _ := os.ReadFile(filepath.Join(e.stateDir(), "patchd.json")); len(held) != 0 {
		t.Errorf("state file left behind: %s", held)
	}
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after a failed start: %s, want 3", r)
	}
}

// TestStatusJSONContract: `patchd status --json` carries at least the
// fields DESIGN.md promises, running and not.
func TestStatusJSONContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var off map[string]any
	if r := e.run("status", "--json"); r.code != 3 || json.Unmarshal([]byte(r.stdout), &off) != nil || off["running"] != false {
		t.Errorf("status --json with no daemon: %s, want exit 3 and running false", r)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	r := e.run("status", "--json")
	var on map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &on); err != nil {
		t.Fatalf("status --json: %v (%s)", err, r)
	}
	for _, field := range []string{"running", "pid", "address", "port", "uptime_seconds", "version", "state_dir", "workspace"} {
		if _, ok := on[field]; !ok {
			t.Errorf("status --json lacks %q: %s", field, r.stdout)
		}
	}
	if on["running"] != true || on["workspace"] != e.ws || on["state_dir"] != e.stateDir() {
		t.Errorf("status --json = %s, want running in %s", r.stdout, e.ws)
	}
}

// TestStopStopsStandbys: `patchd stop` stops the instance, the active
// daemon and the standbys waiting on its state dir, says so, and returns
// once all of them are gone; no standby takes over. status counts the
// standbys. A later start works.
func TestStopStopsStandbys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	active, _ := e.startRun("--port", "0")
	st := e.waitRunning(10 * time.Second)
	var standbys []*exec.Cmd
	for range 2 {
		sb, out := e.startRun("--port", "0")
		waitFor(t, 10*time.Second, "the standby to say it stands by", func() bool {
			return strings.Contains(out.String(), "standing by")
		})
		standbys = append(standbys, sb)
	}
	// Standbys register with the active daemon as they stand by.
	var sj map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r := e.run("status", "--json")
		if json.Unmarshal([]byte(r.stdout), &sj) == nil && sj["standbys"] == float64(2) {
			break
		}
	}
	if sj["standbys"] != float64(2) {
		t.Errorf("status --json = %v, want \"standbys\": 2", sj)
	}
	if r := e.run("status"); r.code != 0 || !strings.Contains(r.stdout, "standbys: 2") {
		t.Errorf("status: %s, want it to count 2 standbys", r)
	}

	r := e.run("stop")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pid=%d", st.PID)) || !strings.Contains(r.stdout, "2 standbys") {
		t.Errorf("stop: %s, want exit 0 naming pid %d and 2 standbys", r, st.PID)
	}
	// stop returns once every one of them is gone.
	if pids := e.pids(); len(pids) != 0 {
		t.Errorf("patchd processes after stop returned: %v, want none", pids)
	}
	for _, p := range append([]*exec.Cmd{active}, standbys...) {
		if code := exitCode(t, p, 10*time.Second); code != 0 {
			t.Errorf("pid %d exit code after stop = %d, want 0", p.Process.Pid, code)
		}
	}
	if n := listeners(t, []int{active.Process.Pid, standbys[0].Process.Pid, standbys[1].Process.Pid}); n != 0 {
		t.Errorf("listening sockets after stop = %d, want 0", n)
	}
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after stop: %s, want exit 3", r)
	}
	waitRefused(t, st.Address)

	// The stop does not outlive itself: a new start serves.
	pid, r := e.start()
	if r.code != 0 || pid == 0 {
		t.Fatalf("start after stop: %s", r)
	}
	if r := e.run("stop"); r.code != 0 || strings.Contains(r.stdout, "standby") {
		t.Errorf("stop with no standbys: %s, want exit 0 and no standby mentioned", r)
	}
}

// TestStopAfterRestart: after `patchd restart` the foreground process stays
// as the keeper of its successor, and a standby registers again with the
// successor; `patchd stop` then stops all three, and none takes over.
func TestStopAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	keeper, _ := e.startRun("--port", "0")
	e.waitRunning(10 * time.Second)
	standby, out := e.startRun("--port", "0")
	waitFor(t, 10*time.Second, "the standby", func() bool { return strings.Contains(out.String(), "standing by") })
	r := e.run("restart")
	if r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	succ := pidOf(r.stdout)
	var sj map[string]any
	waitFor(t, 10*time.Second, "the successor to count the keeper and the standby", func() bool {
		r := e.run("status", "--json")
		return json.Unmarshal([]byte(r.stdout), &sj) == nil && sj["pid"] == float64(succ) && sj["standbys"] == float64(2)
	})
	if r := e.run("stop"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pid=%d and 2 standbys", succ)) {
		t.Errorf("stop: %s, want the successor %d and 2 standbys stopped", r, succ)
	}
	for _, p := range []*exec.Cmd{keeper, standby} {
		if code := exitCode(t, p, 10*time.Second); code != 0 {
			t.Errorf("pid %d exit code after stop = %d, want 0", p.Process.Pid, code)
		}
	}
	if pids := e.pids(); len(pids) != 0 {
		t.Errorf("patchd processes after stop: %v, want none", pids)
	}
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after stop: %s, want exit 3", r)
	}
}
