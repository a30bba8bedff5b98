package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
)

// runStop is `patchd stop`: graceful stop, returning once the process is gone.
func runStop(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "stop", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("stop", rest); err != nil {
		return err
	}
	st, err := daemon.Query(ctx, cfg)
	if errors.Is(err, control.ErrNotRunning) {
		fmt.Fprintln(env.Stdout, "patchd was not running")
		return nil
	}
	if err != nil {
		return exit(ExitFailed, "stop: %v", err)
	}
	// Wait for the drain and a margin for the exit itself.
	wctx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout+10*time.Second)
	defer cancel()
	err = control.CallAndWait(wctx, cfg.ControlPath(), "stop", nil)
	if errors.Is(err, control.ErrNotRunning) || errors.Is(err, control.ErrNoAnswer) {
		err = nil // it went away between our two calls
	}
	if err != nil {
		return exit(ExitFailed, "stop pid %d: %v", st.PID, err)
	}
	fmt.Fprintf(env.Stdout, "patchd stopped: pid=%d\n", st.PID)
	return nil
}
