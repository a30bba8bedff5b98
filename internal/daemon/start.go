package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/instance"
)

// StartError is a failed `patchd start`: the reason, the child's exit code
// when it exited, and the last lines of its log.
type StartError struct {
	Reason   string
	ExitCode int // the child's exit code, -1 if it did not exit
	LogTail  string
}

func (e *StartError) Error() string { return e.Reason }

// Query asks the running instance for its status over the control socket.
// control.ErrNotRunning when no instance answers.
func Query(ctx context.Context, cfg *config.Config) (Status, error) {
	var st Status
	err := control.Call(ctx, cfg.ControlPath(), "status", &st)
	return st, err
}

// Start makes sure a daemon runs for cfg's state directory and returns its
// status; started says whether this call launched it. It is safe to call
// from any number of processes at once: whoever wins the instance lock
// spawns the daemon and hands the lock to it, everyone else waits for that
// daemon to answer. exe and args are the command that runs it in the
// foreground (this binary and `run` with the caller's flags).
func Start(ctx context.Context, cfg *config.Config, exe string, args []string) (st Status, started bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := PrepareStateDir(cfg.StateDir); err != nil {
		return st, false, err
	}
	for {
		if st, err := Query(ctx, cfg); err == nil {
			return st, false, nil
		}
		lock, err := instance.TryLock(cfg.LockPath())
		switch {
		case err == nil:
			st, err := spawn(ctx, cfg, lock, exe, args)
			return st, err == nil, err
		case !errors.Is(err, instance.ErrLocked):
			return st, false, err
		}
		// Someone holds the lock: a daemon coming up, or another starter
		// about to spawn one. Poll its control socket until it answers.
		select {
		case <-ctx.Done():
			return st, false, &StartError{ExitCode: -1, LogTail: tail(cfg.LogPath(), 20),
				Reason: fmt.Sprintf("another instance holds %s but did not answer within %s", cfg.LockPath(), cfg.StartTimeout)}
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// spawn starts the daemon detached (own session, output to the log) with the
// instance lock already held, and waits for its ready message.
func spawn(ctx context.Context, cfg *config.Config, lock *instance.Lock, exe string, args []string) (Status, error) {
	defer lock.Release() // the child holds its own reference from here on
	var st Status
	logf, err := openLogForChild(cfg)
	if err != nil {
		return st, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return st, fmt.Errorf("ready pipe: %w", err)
	}
	defer pr.Close()

	cmd := exec.Command(exe, args...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	// fd 3 = lock, fd 4 = ready pipe.
	cmd.ExtraFiles = []*os.File{lock.File(), pw}
	cmd.Env = childEnv(envLockFD+"=3", envReadyFD+"=4", envDetached+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return st, fmt.Errorf("start %s: %w", exe, err)
	}
	pw.Close()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &st)
		}
		ready <- err
	}()

	select {
	case err := <-ready:
		if err == nil {
			// The child outlives us; nobody waits for it but init.
			cmd.Process.Release()
			return st, nil
		}
		// The pipe closed without a message: the child died or gave up.
		return st, childFailed(cfg, exited, cmd)
	case <-ctx.Done():
		cmd.Process.Kill()
		<-exited
		return st, &StartError{ExitCode: -1, LogTail: tail(cfg.LogPath(), 20),
			Reason: fmt.Sprintf("daemon pid %d was not ready within %s; killed it", cmd.Process.Pid, cfg.StartTimeout)}
	}
}

func childFailed(cfg *config.Config, exited <-chan error, cmd *exec.Cmd) error {
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	code := cmd.ProcessState.ExitCode()
	logTail := tail(cfg.LogPath(), 20)
	reason := fmt.Sprintf("daemon exited with code %d before it was ready", code)
	if line := lastError(logTail); line != "" {
		reason += ": " + line
	}
	return &StartError{Reason: reason, ExitCode: code, LogTail: logTail}
}

func openLogForChild(cfg *config.Config) (*os.File, error) {
	if err := os.MkdirAll(cfg.StateDir+"/logs", 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(cfg.LogPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", cfg.LogPath(), err)
	}
	return f, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(-max, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// lastError picks the message of the last error line of a JSON log tail.
func lastError(logTail string) string {
	lines := strings.Split(logTail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Err   string `json:"err"`
		}
		if json.Unmarshal([]byte(lines[i]), &rec) == nil && rec.Level == "ERROR" {
			if rec.Err != "" {
				return rec.Err
			}
			return rec.Msg
		}
		// What main printed before exiting, when the log was not open yet.
		if msg, ok := strings.CutPrefix(lines[i], "patchd: "); ok {
			return msg
		}
	}
	return ""
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
