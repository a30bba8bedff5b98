package main

import (
	"encoding/json"
	"fmt"
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

// pm2 runs PM2 commands against a PM2 daemon of the test's own (PM2_HOME).
type pm2 struct {
	t    *testing.T
	home string
}

func newPM2(t *testing.T) *pm2 {
	t.Helper()
	skipShort(t)
	if _, err := exec.LookPath("pm2"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pm2 is not installed; .ci/run installs it with npm")
		}
		t.Skip("pm2 is not installed (npm install -g pm2)")
	}
	// A short path: PM2 puts unix sockets in its home.
	home, err := os.MkdirTemp("", "pm2-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pm2{t: t, home: home}
	t.Cleanup(func() {
		if t.Failed() {
			// What PM2 saw of patchd's output, for the failure report.
			logs, _ := filepath.Glob(filepath.Join(home, "logs", "*.log"))
			logs = append(logs, filepath.Join(home, "pm2.log"))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				if len(data) > 8000 {
					data = data[len(data)-8000:]
				}
				t.Logf("%s:\n%s", filepath.Base(l), data)
			}
		}
		p.run("kill")
		// patchd's stderr under PM2: a panic fails the test.
		logs, _ := filepath.Glob(filepath.Join(home, "logs", "*.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			for _, r := range scanCrashes(data) {
				t.Errorf("a process under PM2 reported a crash or a data race: %s:\n%s", l, r)
			}
		}
		os.RemoveAll(home)
	})
	return p
}

func (p *pm2) run(args ...string) result {
	p.t.Helper()
	cmd := exec.Command("pm2", args...)
	cmd.Env = append(cleanEnv(), "PM2_HOME="+p.home)
	cmd.WaitDelay = time.Second
	return runCmd(p.t, cmd)
}

type pm2Proc struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	PM2Env struct {
		Status       string `json:"status"`
		RestartTime  int    `json:"restart_time"`
		UnstableRest int    `json:"unstable_restarts"`
		ExitCode     *int   `json:"exit_code"`
	} `json:"pm2_env"`
}

func (p *pm2) proc(name string) pm2Proc {
	p.t.Helper()
	r := p.run("jlist")
	var procs []pm2Proc
	// jlist may print warnings before the JSON.
	out := r.stdout[strings.Index(r.stdout, "["):]
	if err := json.Unmarshal([]byte(out), &procs); err != nil {
		p.t.Fatalf("pm2 jlist: %v (%s)", err, r)
	}
	for _, pr := range procs {
		if pr.Name == name {
			return pr
		}
	}
	p.t.Fatalf("pm2 jlist has no %q: %s", name, r.stdout)
	return pm2Proc{}
}

// TestPM2HostileWatchdog: patchd under real PM2, started from the generated
// ecosystem file, while a watchdog runs `patchd start` every 100 ms, a
// monitor runs `patchd health`, and two extra `patchd run` stand by. For 15
// s: one listener, PM2 never restarts anything, no health call fails. Then
// `patchd restart` keeps PM2's process (restart count 0), and `pm2 stop`
// ends patchd cleanly.
func TestPM2HostileWatchdog(t *testing.T) {
	t.Parallel()
	p := newPM2(t)
	e := newEnv(t)
	flags := []string{"--workspace", e.ws, "--port", "0"}

	dir := t.TempDir()
	gen := exec.Command(patchdBin, append([]string{"service", "pm2", "--out", dir}, flags...)...)
	gen.Env = cleanEnv()
	if r := runCmd(t, gen); r.code != 0 {
		t.Fatalf("patchd service pm2: %s", r)
	}
	eco := filepath.Join(dir, "ecosystem.config.js")
	if r := p.run("start", eco); r.code != 0 {
		t.Fatalf("pm2 start: %s", r)
	}
	st := e.waitRunning(20 * time.Second)
	pm2PID := p.proc("patchd").PID
	if st.PID != pm2PID {
		t.Fatalf("status pid = %d, want PM2's process %d", st.PID, pm2PID)
	}

	// The hostile watchdog.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var starts, startFails, healths, healthFails atomic.Int64
	var failMu sync.Mutex
	var fails []string
	note := func(s string) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(fails) < 10 {
			fails = append(fails, s)
		}
	}
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(d)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					f()
				}
			}
		}()
	}
	every(100*time.Millisecond, func() {
		r := e.run(append([]string{"start"}, flags[2:]...)...)
		starts.Add(1)
		if r.code != 0 || pidOf(r.stdout) != pm2PID {
			startFails.Add(1)
			note("start: " + r.String())
		}
	})
	every(100*time.Millisecond, func() {
		r := e.run("health")
		healths.Add(1)
		if r.code != 0 {
			healthFails.Add(1)
			note("health: " + r.String())
		}
	})
	every(20*time.Millisecond, func() {
		code, _, err := getHealth(st.Address)
		healths.Add(1)
		if err != nil || code != 200 {
			healthFails.Add(1)
			note(fmt.Sprintf("GET /health: %d %v", code, err))
		}
	})
	standby1, _ := e.startRun(flags[2:]...)
	standby2, _ := e.startRun(flags[2:]...)

	// The attack lasts 15 s, and on a loaded machine (a race-built start
	// can take most of a second) until 50 starts have run, at most 90 s.
	began := time.Now()
	time.Sleep(15 * time.Second) // the duration of the attack, not a readiness wait
	for starts.Load() < 50 && time.Since(began) < 90*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	t.Logf("%d starts, %d health checks during %s", starts.Load(), healths.Load(), time.Since(began).Round(time.Second))
	if startFails.Load()+healthFails.Load() > 0 {
		t.Errorf("%d starts and %d health checks failed: %v", startFails.Load(), healthFails.Load(), fails)
	}
	if starts.Load() < 50 {
		t.Errorf("only %d watchdog starts ran", starts.Load())
	}
	pids := e.pids()
	if n := listeners(t, pids); n != 1 {
		t.Errorf("listening sockets among patchd processes %v = %d, want 1", pids, n)
	}
	if got := len(pids); got != 3 {
		t.Errorf("patchd processes = %v, want PM2's and the two standbys", pids)
	}
	pr := p.proc("patchd")
	if pr.PM2Env.RestartTime != 0 || pr.PM2Env.Status != "online" || pr.PID != pm2PID {
		t.Errorf("PM2 after the attack: pid %d status %s restarts %d; want pid %d online with 0 restarts",
			pr.PID, pr.PM2Env.Status, pr.PM2Env.RestartTime, pm2PID)
	}

	// The standbys leave quietly.
	for _, sb := range []*exec.Cmd{standby1, standby2} {
		sb.Process.Signal(syscall.SIGTERM)
		if code := exitCode(t, sb, 10*time.Second); code != 0 {
			t.Errorf("standby exit code on SIGTERM = %d, want 0", code)
		}
	}

	// A zero-downtime restart under PM2: PM2's process stays, as a keeper.
	r := e.run("restart")
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
		t.Fatalf("restart under PM2: %s\nlog:\n%s", r, log)
	}
	newPID := pidOf(r.stdout)
	if code, _, err := getHealth(st.Address); err != nil || code != 200 {
		t.Errorf("health after restart: %d %v", code, err)
	}
	pr = p.proc("patchd")
	if pr.PID != pm2PID || pr.PM2Env.Status != "online" || pr.PM2Env.RestartTime != 0 {
		t.Errorf("PM2 after patchd restart: pid %d status %s restarts %d; want pid %d online, 0 restarts",
			pr.PID, pr.PM2Env.Status, pr.PM2Env.RestartTime, pm2PID)
	}
	if now, _ := e.status(); now.PID != newPID {
		t.Errorf("status pid after restart = %d, want %d", now.PID, newPID)
	}

	// SIGHUP through PM2 reaches the keeper, which passes it on as a restart.
	if r := p.run("sendSignal", "SIGHUP", "patchd"); r.code != 0 {
		t.Fatalf("pm2 sendSignal SIGHUP: %s", r)
	}
	waitFor(t, 20*time.Second, "a restart after SIGHUP to the keeper", func() bool {
		now, _ := e.status()
		return now.Running && now.PID != 0 && now.PID != newPID
	})
	if pr := p.proc("patchd"); pr.PID != pm2PID || pr.PM2Env.RestartTime != 0 {
		t.Errorf("PM2 after SIGHUP: pid %d restarts %d; want %d, 0", pr.PID, pr.PM2Env.RestartTime, pm2PID)
	}

	// pm2 stop ends patchd: the keeper stops the daemon it handed over to.
	if r := p.run("stop", "patchd"); r.code != 0 {
		t.Fatalf("pm2 stop: %s", r)
	}
	waitFor(t, 20*time.Second, "every patchd process to exit", func() bool { return len(e.pids()) == 0 })
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after pm2 stop: %s, want exit 3", r)
	}
	pr = p.proc("patchd")
	if pr.PM2Env.Status != "stopped" || pr.PM2Env.RestartTime != 0 {
		t.Errorf("PM2 after pm2 stop: status %s restarts %d, want stopped, 0", pr.PM2Env.Status, pr.PM2Env.RestartTime)
	}
	log, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
	if !strings.Contains(string(log), "stopped the daemon we handed over to") {
		t.Errorf("log does not show the keeper stopping its successor")
	}
}

// pm2Start generates the ecosystem file for e with flags and starts it under
// p, returning the status of the daemon PM2 started.
func pm2Start(t *testing.T, p *pm2, e *tenv, flags ...string) status {
	t.Helper()
	dir := t.TempDir()
	gen := exec.Command(patchdBin, append([]string{"service", "pm2", "--out", dir, "--workspace", e.ws}, flags...)...)
	gen.Env = cleanEnv()
	if r := runCmd(t, gen); r.code != 0 {
		t.Fatalf("patchd service pm2: %s", r)
	}
	if r := p.run("start", filepath.Join(dir, "ecosystem.config.js")); r.code != 0 {
		t.Fatalf("pm2 start: %s", r)
	}
	st := e.waitRunning(20 * time.Second)
	if pid := p.proc("patchd").PID; st.PID != pid {
		t.Fatalf("status pid = %d, want PM2's process %d", st.PID, pid)
	}
	return st
}

// TestPM2RestartsAfterKill9: PM2 reports a death by signal as exit code 0,
// so a patchd killed by SIGKILL (or the OOM killer) must be restarted
// although 0 is also a clean exit; a `patchd stop` run by a person still
// leaves it stopped (exit code 6), even as the keeper of a restarted
// daemon, and so does `pm2 stop`.
func TestPM2RestartsAfterKill9(t *testing.T) {
	t.Parallel()
	p := newPM2(t)
	e := newEnv(t)
	st := pm2Start(t, p, e, "--port", "0")

	syscall.Kill(st.PID, syscall.SIGKILL)
	var now status
	waitFor(t, 15*time.Second, "PM2 to restart patchd after kill -9", func() bool {
		now, _ = e.status()
		if !now.Running || now.PID == st.PID {
			return false
		}
		code, _, err := getHealth(now.Address)
		return err == nil && code == 200
	})
	if pr := p.proc("patchd"); pr.PID != now.PID || pr.PM2Env.Status != "online" || pr.PM2Env.RestartTime != 1 {
		t.Errorf("PM2 after kill -9: pid %d status %s restarts %d; want pid %d online with 1 restart",
			pr.PID, pr.PM2Env.Status, pr.PM2Env.RestartTime, now.PID)
	}

	// After `patchd restart`, PM2's process is the keeper of the new
	// daemon. A person's `patchd stop` ends both, and PM2 must not bring
	// its process back.
	r := e.run("restart")
	if r.code != 0 {
		t.Fatalf("restart under PM2: %s", r)
	}
	succ := pidOf(r.stdout)
	waitFor(t, 10*time.Second, "the keeper to register with the new daemon", func() bool {
		r := e.run("status", "--json")
		var sj map[string]any
		return json.Unmarshal([]byte(r.stdout), &sj) == nil && sj["pid"] == float64(succ) && sj["standbys"] == float64(1)
	})
	if r := e.run("stop"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pid=%d and 1 standby (pid %d)", succ, now.PID)) {
		t.Fatalf("patchd stop under PM2: %s, want the new daemon %d and PM2's keeper %d stopped", r, succ, now.PID)
	}
	waitFor(t, 10*time.Second, "PM2 to see the exit", func() bool { return p.proc("patchd").PID == 0 })
	// PM2 would restart after its backoff delay (150 ms now); wait well
	// past it. (PM2 7 shows "waiting restart" for an app with a restart
	// delay that exits with a stop code, and does not restart it.)
	time.Sleep(2 * time.Second)
	pr := p.proc("patchd")
	if pr.PID != 0 || pr.PM2Env.RestartTime != 1 || pr.PM2Env.ExitCode == nil || *pr.PM2Env.ExitCode != 6 {
		t.Errorf("PM2 after patchd stop: pid %d restarts %d exit code %v; want pid 0, still 1 restart, exit code 6",
			pr.PID, pr.PM2Env.RestartTime, derefInt(pr.PM2Env.ExitCode))
	}
	if pids := e.pids(); len(pids) != 0 {
		t.Errorf("patchd processes after patchd stop under PM2: %v, want none", pids)
	}

	// pm2 start brings it back, pm2 stop (SIGINT, exit 0) ends it for good.
	if r := p.run("start", "patchd"); r.code != 0 {
		t.Fatalf("pm2 start patchd: %s", r)
	}
	e.waitRunning(20 * time.Second)
	if r := p.run("stop", "patchd"); r.code != 0 {
		t.Fatalf("pm2 stop: %s", r)
	}
	waitFor(t, 20*time.Second, "every patchd process to exit", func() bool { return len(e.pids()) == 0 })
	if pr := p.proc("patchd"); pr.PM2Env.Status != "stopped" || pr.PM2Env.RestartTime != 1 {
		t.Errorf("PM2 after pm2 stop: status %s restarts %d, want stopped, 1", pr.PM2Env.Status, pr.PM2Env.RestartTime)
	}
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestPM2StandbyStop: PM2's patchd stands by behind one started by hand;
// `patchd stop` stops both, and PM2 does not start its own again (exit
// code 6).
func TestPM2StandbyStop(t *testing.T) {
	t.Parallel()
	p := newPM2(t)
	e := newEnv(t)
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	dir := t.TempDir()
	gen := exec.Command(patchdBin, "service", "pm2", "--out", dir, "--workspace", e.ws, "--port", "0")
	gen.Env = cleanEnv()
	if r := runCmd(t, gen); r.code != 0 {
		t.Fatalf("patchd service pm2: %s", r)
	}
	if r := p.run("start", filepath.Join(dir, "ecosystem.config.js")); r.code != 0 {
		t.Fatalf("pm2 start: %s", r)
	}
	var sj map[string]any
	waitFor(t, 20*time.Second, "PM2's patchd to stand by", func() bool {
		r := e.run("status", "--json")
		return json.Unmarshal([]byte(r.stdout), &sj) == nil && sj["standbys"] == float64(1)
	})
	standby := p.proc("patchd").PID
	if r := e.run("stop"); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pid=%d and 1 standby (pid %d)", pid, standby)) {
		t.Errorf("stop: %s, want pid %d and PM2's standby %d stopped", r, pid, standby)
	}
	if pids := e.pids(); len(pids) != 0 {
		t.Errorf("patchd processes after stop: %v, want none", pids)
	}
	waitFor(t, 10*time.Second, "PM2 to see the exit", func() bool { return p.proc("patchd").PID == 0 })
	time.Sleep(2 * time.Second) // past PM2's restart delay (100 ms), see TestPM2RestartsAfterKill9
	pr := p.proc("patchd")
	if pr.PID != 0 || pr.PM2Env.RestartTime != 0 || derefInt(pr.PM2Env.ExitCode) != 6 {
		t.Errorf("PM2 after patchd stop: pid %d restarts %d exit code %v; want pid 0, no restart, exit code 6",
			pr.PID, pr.PM2Env.RestartTime, derefInt(pr.PM2Env.ExitCode))
	}
	if r := e.run("status"); r.code != 3 {
		t.Errorf("status after stop: %s, want exit 3", r)
	}
}
