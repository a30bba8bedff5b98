package worker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/patchd/patchd/internal/checkspec"
	"github.com/patchd/patchd/internal/sandbox"
)

// maxCheckOutput bounds what a check's output adds to a patch's record; it
// is also all of the output that is kept in memory.
const maxCheckOutput = 16 << 10

// checkOutputWait bounds how long a check's output is read after the check
// ended and its process group was killed: a process that left the group
// (setsid) may hold the pipe open for good.
const checkOutputWait = time.Second

// runChecks runs, in the workspace, every configured check whose paths match
// a file of the transaction. The first failure is returned with the check's
// name, exit status and the tail of its output. Commands come from the
// config file only, never from a payload; but what they run is the
// workspace's code as the patch left it.
func (w *Worker) runChecks(t *txn) error {
	for _, c := range w.opts.Checks {
		if !checkApplies(c, t) {
			continue
		}
		if c.Sandbox {
			if err := w.sandboxAvailable(); err != nil {
				return errorf(CodeCheckFailed, "check %q asks for the sandbox, which this system cannot provide (%v); the patch was undone", c.Name, err)
			}
		}
		start := time.Now()
		out, status, err := w.runCheck(c)
		took := time.Since(start).Round(time.Millisecond)
		if err == nil {
			w.log.Info("check passed", "check", c.Name, "duration", took.String())
			continue
		}
		return w.answer(errorf(CodeCheckFailed, "check %q failed (%s after %s); the patch was undone. Output:\n%s", c.Name, status, took, out))
	}
	return nil
}

// runCheck runs one check in its own process group, with a clean
// environment (checkEnv) and a private TMPDIR, and kills the whole group
// when the check ends or times out, so that nothing it started outlives it.
// It returns the tail of the output and, on failure, a short status.
func (w *Worker) runCheck(c checkspec.Check) (output, status string, err error) {
	tmp, err := os.MkdirTemp("", "patchd-check-")
	if err != nil {
		return "", "no temporary directory", fmt.Errorf("check temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	environ := w.opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	argv := c.Command
	if c.Sandbox {
		if argv, err = w.sandboxed(c, tmp); err != nil {
			return "", "not run", err
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.opts.Workspace.Dir()
	cmd.Env = checkEnv(environ, c, tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// An *os.File as output: Wait returns when the check itself exits,
	// not when the last process holding the pipe does.
	r, pw, err := os.Pipe()
	if err != nil {
		return "", "no pipe", fmt.Errorf("check output pipe: %w", err)
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return "", err.Error(), err
	}
	tail := &tailBuffer{max: maxCheckOutput}
	copied := make(chan struct{})
	go func() {
		io.Copy(tail, r)
		close(copied)
	}()
	pgid := cmd.Process.Pid
	var expired atomic.Bool
	timer := time.AfterFunc(c.Timeout, func() {
		expired.Store(true)
		syscall.Kill(-pgid, syscall.SIGKILL)
	})
	err = cmd.Wait()
	timer.Stop()
	// Whatever the check left running goes with it.
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(checkOutputWait):
		r.Close()
		<-copied
	}
	// Its private TMPDIR is a path of this machine, and a passing one.
	output = strings.ReplaceAll(tail.String(), tmp, "$TMPDIR")
	var ee *exec.ExitError
	switch {
	case expired.Load():
		return output, fmt.Sprintf("timed out after %s", c.Timeout), errors.New("timed out")
	case err == nil:
		return output, "", nil
	case errors.As(err, &ee):
		return output, fmt.Sprintf("exit code %d", ee.ExitCode()), err
	}
	return output, err.Error(), err
}

// sandboxed is the command line that runs c confined (see package
// sandbox): writes go only to the workspace, tmp and the check's writable
// directories, never to the protected paths nor the workspace's .git.
func (w *Worker) sandboxed(c checkspec.Check, tmp string) ([]string, error) {
	exe, err := sandbox.Exe()
	if err != nil {
		return nil, err
	}
	ws := w.opts.Workspace.Dir()
	spec := sandbox.Spec{
		Writable: append([]string{ws, tmp}, c.Writable...),
		Protect:  slices.Clone(w.opts.Protect),
	}
	if _, err := os.Lstat(filepath.Join(ws, ".git")); err == nil {
		spec.Protect = append(spec.Protect, filepath.Join(ws, ".git"))
	}
	return append([]string{exe}, sandbox.Args(spec, c.Command)...), nil
}

// checkEnv is a check's whole environment: from environ only the variables
// checkspec.EnvDefault lets through and those the check passes (never
// PATCHD_*), then the check's own values, and TMPDIR set to tmp.
func checkEnv(environ []string, c checkspec.Check, tmp string) []string {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.HasPrefix(k, "PATCHD_") {
			continue
		}
		if checkspec.EnvDefault(k) || slices.Contains(c.PassEnv, k) {
			vars[k] = v
		}
	}
	for k, v := range c.Env {
		vars[k] = v
	}
	vars["TMPDIR"] = tmp
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// checkApplies: no paths means always; otherwise a glob must match a changed
// file's path or its base name.
func checkApplies(c checkspec.Check, t *txn) bool {
	if len(c.Paths) == 0 {
		return true
	}
	for _, f := range t.files {
		for _, g := range c.Paths {
			if ok, _ := path.Match(g, f.path); ok {
				return true
			}
			if ok, _ := path.Match(g, path.Base(f.path)); ok {
				return true
			}
		}
	}
	return false
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	buf  []byte
	lost bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= b.max {
		b.buf, b.lost = append(b.buf[:0], p[len(p)-b.max:]...), true
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf, b.lost = append(b.buf[:0], b.buf[over:]...), true
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

// String is the kept output, marked with "…" when the start was cut.
func (b *tailBuffer) String() string {
	s := strings.TrimRight(string(b.buf), "\n")
	if b.lost {
		s = "…" + s
	}
	return s
}
