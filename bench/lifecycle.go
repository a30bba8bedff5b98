package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// startupResult is the time from launch to a healthy /health, per run.
type startupResult struct {
	name string
	how  string
	runs []time.Duration // sorted
}

// startup times `patchd start` in fresh workspaces, and the reference
// servers from exec to their first healthy /health.
func (b *bench) startup(ctx context.Context, rep *report) error {
	res := startupResult{name: "patchd", how: "`patchd start --port 0` in a fresh workspace, until it returns (it returns once the daemon answers /health)"}
	logf("start-up: patchd, %d runs", b.opts.startRuns)
	for range b.opts.startRuns {
		ws := b.workspace("start")
		d, took, err := b.startPatchd(ctx, ws)
		if err != nil {
			return err
		}
		if _, ok := healthPID(ctx, d.addr, 2*time.Second); !ok {
			return fmt.Errorf("patchd start returned but %s/health does not answer", d.addr)
		}
		if err := d.stop(ctx); err != nil {
			return err
		}
		res.runs = append(res.runs, took)
	}
	slices.Sort(res.runs)
	rep.startup = append(rep.startup, res)

	refs := []struct {
		name, how string
		argv      []string
	}{{"ceiling", "exec of the binary until /health answers", []string{b.ceiling}}}
	if b.flask.python != "" {
		refs = append(refs, struct {
			name, how string
			argv      []string
		}{"Flask", "exec of python3 flask_app.py until /health answers", []string{b.flask.python, b.flask.app}})
	}
	for _, ref := range refs {
		res := startupResult{name: ref.name, how: ref.how}
		runs := max(3, b.opts.startRuns/2)
		logf("start-up: %s, %d runs", ref.name, runs)
		for range runs {
			t0 := time.Now()
			s, err := b.startServer(ctx, ref.name, ref.argv...)
			if err != nil {
				return err
			}
			res.runs = append(res.runs, time.Since(t0))
			s.stop()
		}
		slices.Sort(res.runs)
		rep.startup = append(rep.startup, res)
	}
	return nil
}

// freePort finds a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runProc is a `patchd run` in the foreground, its console log watched for
// the line saying it stands by.
type runProc struct {
	cmd      *exec.Cmd
	standing chan struct{} // closed when it logged "standing by"
	exited   chan struct{}
}

func (b *bench) startRun(ws string, port int) (*runProc, error) {
	c := exec.Command(b.patchd, "run", "--workspace", ws, "--port", fmt.Sprint(port), "--fallback-port", "none")
	c.Env = cleanEnv()
	stderr, err := c.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	b.procs.addCmd(c)
	p := &runProc{cmd: c, standing: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		// Read the console log to its end, or the daemon would block on it.
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "standing by") {
				seen = true
				close(p.standing)
			}
		}
		c.Wait()
		close(p.exited)
	}()
	return p, nil
}

// takeoverResult is the time from kill -9 of the active instance until
// the standby answers /health on the same port.
type takeoverResult struct {
	runs []time.Duration // sorted
	port int
}

func (b *bench) takeover(ctx context.Context, rep *report) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ws := b.workspace("takeover")
	if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
		return err
	}
	active, err := b.startRun(ws, port)
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, addr, 15*time.Second); err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(ws, ".patchd", "token"))
	if err != nil {
		return fmt.Errorf("the takeover daemon's token: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	res := takeoverResult{port: port}
	logf("standby takeover: %d kill -9s on port %d", b.opts.takeovers, port)
	for range b.opts.takeovers {
		standby, err := b.startRun(ws, port)
		if err != nil {
			return err
		}
		select {
		case <-standby.standing:
		case <-standby.exited:
			return errors.New("the standby exited instead of standing by")
		case <-time.After(15 * time.Second):
			return errors.New("the standby did not say it stands by within 15s")
		}
		t0 := time.Now()
		active.cmd.Process.Signal(syscall.SIGKILL)
		took := time.Duration(0)
		for deadline := t0.Add(15 * time.Second); time.Now().Before(deadline); {
			if pid, ok := healthPIDToken(ctx, addr, token, 200*time.Millisecond); ok && pid == standby.cmd.Process.Pid {
				took = time.Since(t0)
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		<-active.exited
		if took == 0 {
			return fmt.Errorf("the standby did not answer on %s within 15s of kill -9", addr)
		}
		res.runs = append(res.runs, took)
		active = standby
	}
	active.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-active.exited:
	case <-time.After(15 * time.Second):
		active.cmd.Process.Kill()
		<-active.exited
	}
	slices.Sort(res.runs)
	rep.takeover = &res
	return nil
}

// restartResult is `patchd restart` repeated under load.
type restartResult struct {
	restarts, failedRestarts int
	clients                  int
	load                     loadResult
	stored                   int
	pids                     int // distinct daemon pids seen
	took                     []time.Duration
}

var pidRE = regexp.MustCompile(`pid=(\d+)`)

func (b *bench) restartsUnderLoad(ctx context.Context, rep *report) error {
	const clients = 16
	ws := b.workspace("restart")
	if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
		return err
	}
	d, _, err := b.startPatchd(ctx, ws)
	if err != nil {
		return err
	}
	defer d.stop(ctx)
	body := newPatchBody("src/app.py")
	var progress atomic.Int64
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan loadResult, 1)
	go func() {
		done <- runLoad(lctx, load{
			url: "http://" + d.addr + "/webhook", token: d.token, clients: clients,
			dur: 4 * time.Minute, progress: &progress,
			body: func(c, n int) []byte { return body.make(patchID("r", c, n)) },
		})
	}()
	waitProgress := func(n int64) {
		want := progress.Load() + n
		for deadline := time.Now().Add(10 * time.Second); progress.Load() < want && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitProgress(200)
	res := restartResult{restarts: b.opts.restarts, clients: clients}
	pids := map[string]bool{fmt.Sprint(d.pid): true}
	logf("restarts: %d `patchd restart`s under %d clients of load", b.opts.restarts, clients)
	for range b.opts.restarts {
		t0 := time.Now()
		out, err := b.runPatchd(ctx, ws, "restart")
		res.took = append(res.took, time.Since(t0))
		if err != nil {
			res.failedRestarts++
			logf("%v", err)
			continue
		}
		if m := pidRE.FindStringSubmatch(out); m != nil {
			pids[m[1]] = true
		}
		// Let the load reach the new daemon before the next restart.
		waitProgress(50)
	}
	cancel()
	res.load = <-done
	res.pids = len(pids)
	slices.Sort(res.took)
	if err := d.refresh(ctx); err != nil {
		return err
	}
	q, err := d.queue(ctx)
	if err != nil {
		return err
	}
	res.stored = q.Total
	rep.restart = &res
	return nil
}
