package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
)

// runRestart is `patchd restart`: replace the running daemon with the binary
// on disk, on the same listening socket, without refusing a connection. If
// none runs, it starts one.
func runRestart(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "restart", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("restart", rest); err != nil {
		return err
	}
	var res struct {
		PID         int    `json:"pid"`
		PreviousPID int    `json:"previous_pid"`
		Address     string `json:"address"`
	}
	// The successor gets StartTimeout to prepare and again to serve, the
	// old daemon DrainTimeout to drain: wait for all of it, and a margin.
	wctx, cancel := context.WithTimeout(ctx, 2*cfg.StartTimeout+cfg.DrainTimeout+15*time.Second)
	defer cancel()
	// Returns once the old process has let go of everything.
	err = control.CallAndWait(wctx, cfg.ControlPath(), "restart", &res)
	if errors.Is(err, control.ErrNotRunning) {
		fmt.Fprintln(env.Stdout, "patchd was not running; starting it")
		return runStart(ctx, env, args)
	}
	if err != nil {
		return exit(ExitFailed, "%v", err)
	}
	if _, err := daemon.Probe(ctx, res.Address, daemon.ProbeToken(cfg)); err != nil {
		return exit(ExitFailed, "restart: new daemon pid %d does not answer /health: %v", res.PID, err)
	}
	fmt.Fprintf(env.Stdout, "patchd restarted: pid=%d address=%s (was pid %d)\n", res.PID, res.Address, res.PreviousPID)
	return nil
}
