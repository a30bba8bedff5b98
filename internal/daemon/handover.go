package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// The restart handshake, over a socket pair between the old daemon and the
// new one it spawns from the binary on disk:
//
//	new → old  {"state":"prepared"}  sockets and lock adopted, config loaded
//	old        stops accepting, drains requests, stops its worker, closes the store
//	old → new  {"cmd":"go"}
//	new        opens the store, starts its worker, serves
//	new → old  {"state":"ready"}     (or {"error":…} and exits)
//	old        tells systemd the new MAINPID, answers `patchd restart`, exits
//
// The listening socket never closes: between the old server's last accept
// and the new one's first, connections wait in the kernel's backlog. If the
// new daemon fails at any step, the old one rebuilds its serving stack on
// the same sockets and keeps serving.

// handoverGrace bounds how long requests in flight get to be answered
// (each with "Connection: close") before the old server shuts down, which
// then waits up to the drain timeout for the rest.
const handoverGrace = 2 * time.Second

// handoverIdle is how long a connection must have waited for a request
// before the handover closes it: a pool's idle connection has waited longer
// and is closed at once, while one that went idle a moment ago belongs to
// a client that may be sending its next request right now (or is only
// descheduled on a busy machine: 50 ms proved too short under load),
// and that request gets an answer.
const handoverIdle = 500 * time.Millisecond

// handover spawns the successor and hands the instance over to it. On
// success it returns the successor's pid and the caller exits; on failure
// the session serves again on a fresh stack.
func (s *session) handover(ctx context.Context, old *stack) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the binary: %w", err)
	}
	if _, err := os.Stat(exe); err != nil {
		return 0, fmt.Errorf("the binary on disk: %w", err)
	}
	fds, err := socketpair()
	if err != nil {
		return 0, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "handover"), os.NewFile(uintptr(fds[1]), "handover")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return 0, fmt.Errorf("handover socket: %w", err)
	}
	defer conn.Close()

	extra := []string{envLockFD + "=3", envListenFDs + "=http=4,control=5", envHandoverFD + "=6", envStderrFD + "=7"}
	if s.inh.detached {
		extra = append(extra, envDetached+"=1")
	}
	// Its stderr is ours to read until it takes over (see output.go).
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("pipe for the new daemon's output: %w", err)
	}
	// fd 2 the pipe, 3 lock, 4 http, 5 control, 6 handover, 7 our stderr.
	proc, err := spawnWithFiles(exe, os.Args, childEnv(extra...), pw, s.lock.File(), s.httpFile, s.ctlFile, theirs, os.Stderr)
	pw.Close()
	if err != nil {
		pr.Close()
		return 0, fmt.Errorf("start %s: %w", exe, err)
	}
	output := captureOutput(pr, os.Stderr)
	theirs.Close()
	pid := proc.Pid
	s.log.Info("restart: started the new daemon", "pid", pid, "binary", exe)
	exited := make(chan struct{})
	var state *os.ProcessState
	go func() {
		state, _ = proc.Wait()
		close(exited)
	}()
	// After "go" the successor writes to its real stderr again, and says
	// why it failed over the handshake; before, its output tells.
	fail := func(step string, err error, quote bool) error {
		proc.Kill()
		<-exited
		msg := fmt.Sprintf("new daemon pid %d %s: %v", pid, step, err)
		if code := state.ExitCode(); code >= 0 {
			msg += fmt.Sprintf(" (exit code %d)", code)
		}
		if line := output.reason(time.Second); quote && line != "" {
			msg += "; it said: " + line
		}
		return errors.New(msg)
	}

	r := bufio.NewReader(conn)
	if _, err := readHandover(r, conn, s.cfg.StartTimeout, "prepared"); err != nil {
		// We never stopped serving.
		return 0, fmt.Errorf("%w; pid %d keeps serving", fail("did not get ready to take over", err, true), os.Getpid())
	}
	s.log.Info("restart: the new daemon is prepared; draining", "pid", pid)
	s.notifier.Reloading()
	drainStart := time.Now()
	old.down(s.log, s.cfg.DrainTimeout, handoverGrace)
	s.log.Info("restart: drained; handing over the store", "took", time.Since(drainStart).Round(time.Millisecond).String())
	if err := writeJSONLine(conn, handoverMsg{Cmd: "go"}); err != nil {
		return 0, s.resume(ctx, fail("did not take the go", err, true))
	}
	if _, err := readHandover(r, conn, s.cfg.StartTimeout, "ready"); err != nil {
		return 0, s.resume(ctx, fail("failed to start serving", err, false))
	}
	s.notifier.HandOver(pid, fmt.Sprintf("serving on %s (restarted)", s.address))
	s.log.Info("restart: the new daemon serves; handing over", "pid", pid)
	return pid, nil
}

// resume serves again after a failed handover and returns cause.
func (s *session) resume(ctx context.Context, cause error) error {
	s.log.Error("restart failed; resuming service", "err", cause)
	if _, err := s.up(ctx); err != nil {
		// Nothing serves now; stopping lets a standby or the supervisor
		// take over rather than hold the lock doing nothing.
		s.log.Error("could not resume after a failed restart; stopping", "err", err)
		s.stop()
		return fmt.Errorf("%v; and resuming failed: %v", cause, err)
	}
	s.notifier.Ready(fmt.Sprintf("serving on %s (a restart failed)", s.address))
	return fmt.Errorf("%v; pid %d keeps serving", cause, os.Getpid())
}

// readHandover reads one message and checks it is the state wanted.
func readHandover(r *bufio.Reader, c net.Conn, timeout time.Duration, want string) (handoverMsg, error) {
	var m handoverMsg
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	line, err := r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return m, fmt.Errorf("no %q within %s", want, timeout)
		}
		return m, fmt.Errorf("it exited or closed the handshake")
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("bad handshake message %q", line)
	}
	if m.Error != "" {
		return m, errors.New(m.Error)
	}
	if m.State != want && m.Cmd != want {
		return m, fmt.Errorf("got %q, want %q", line, want)
	}
	return m, nil
}

// awaitGo is the new daemon's side: say we are prepared, wait for the old
// daemon to let go of the store.
func (s *session) awaitGo() error {
	c := s.inh.handover
	if err := writeJSONLine(c, handoverMsg{State: "prepared", PID: os.Getpid()}); err != nil {
		return fmt.Errorf("restart handshake: %w", err)
	}
	if _, err := readHandover(bufio.NewReader(c), c, s.cfg.DrainTimeout+s.cfg.StartTimeout+handoverGrace, "go"); err != nil {
		return fmt.Errorf("restart handshake: the old daemon did not hand over: %w", err)
	}
	return nil
}

// abortHandover tells a restarting predecessor why we could not take over.
func (s *session) abortHandover(err error) {
	if s.inh.handover != nil {
		writeJSONLine(s.inh.handover, handoverMsg{Error: err.Error()})
		s.inh.handover.Close()
	}
}

// spawnWithFiles starts exe with our stdout, stderr as its stderr (nil:
// ours), /dev/null as stdin, and files as fds 3, 4, …. It does not go through os/exec: that calls
// File.Fd, which puts each socket in blocking mode, and blocking mode is a
// property of the socket shared with our own listener. Our accept loop
// would then sleep in the kernel, where closing the listener cannot wake it,
// and a drain would hang until the next connection came.
func spawnWithFiles(exe string, argv, env []string, stderr *os.File, files ...*os.File) (*os.Process, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	if stderr == nil {
		stderr = os.Stderr
	}
	fds := []uintptr{0, 1, 2}
	var rawErr error
	for i, f := range append([]*os.File{devnull, stderr}, files...) {
		rc, err := f.SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("fd for %s: %w", f.Name(), err)
		}
		if err := rc.Control(func(fd uintptr) {
			switch i {
			case 0:
				fds[0] = fd
			case 1:
				fds[2] = fd
			default:
				fds = append(fds, fd)
			}
		}); err != nil {
			rawErr = err
		}
	}
	if rawErr != nil {
		return nil, rawErr
	}
	fds[1] = 1 // ours, as it is
	pid, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{Env: env, Files: fds})
	// The raw fds were borrowed from the files; keep them open until the
	// child has its copies.
	runtime.KeepAlive(stderr)
	for _, f := range files {
		runtime.KeepAlive(f)
	}
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}
