package cli

import (
	"context"
	"errors"

	"github.com/patchd/patchd/internal/daemon"
	"github.com/patchd/patchd/internal/listen"
)

// runRun is `patchd run`: the daemon in the foreground.
func runRun(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "run", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("run", rest); err != nil {
		return err
	}
	return daemonExit(daemon.Run(ctx, cfg, env.Stderr))
}

// daemonExit maps the daemon's errors to the contract's exit codes.
func daemonExit(err error) error {
	var noPort *listen.NoPortError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &noPort):
		return exit(ExitNoPort, "%v", err)
	case errors.Is(err, daemon.ErrAlreadyRunning):
		return exit(ExitAlreadyRunning, "%v", err)
	case errors.Is(err, daemon.ErrStoppedUnderPM2):
		return exit(ExitStopped, "%v", err)
	}
	return exit(ExitFailed, "%v", err)
}
