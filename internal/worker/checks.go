package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/config"
)

// maxCheckOutput bounds what a check's output adds to a patch's record.
const maxCheckOutput = 16 << 10

// runChecks runs, in the workspace, every configured check whose paths match
// a file of the transaction. The first failure is returned with the check's
// name, exit status and the tail of its output. Commands come from the
// config file only: nothing of a payload is ever run.
func (w *Worker) runChecks(t *txn) error {
	for _, c := range w.opts.Checks {
		if !checkApplies(c, t) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
		cmd.Dir = w.opts.Workspace.Dir()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = time.Second
		start := time.Now()
		err := cmd.Run()
		cancel()
		took := time.Since(start).Round(time.Millisecond)
		if err == nil {
			w.log.Info("check passed", "check", c.Name, "duration", took.String())
			continue
		}
		status := err.Error()
		var ee *exec.ExitError
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			status = fmt.Sprintf("timed out after %s", c.Timeout)
		case errors.As(err, &ee):
			status = fmt.Sprintf("exit code %d", ee.ExitCode())
		}
		return fmt.Errorf("check %q failed (%s after %s); the patch was undone. Output:\n%s", c.Name, status, took, tailOf(out.Bytes(), maxCheckOutput))
	}
	return nil
}

// checkApplies: no paths means always; otherwise a glob must match a changed
// file's path or its base name.
func checkApplies(c config.Check, t *txn) bool {
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

func tailOf(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
