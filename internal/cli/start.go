package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/patchd/patchd/internal/daemon"
)

// runStart is `patchd start`: make sure the daemon runs, in the background.
func runStart(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "start", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("start", rest); err != nil {
		return err
	}
	// The child runs with exactly the flags we were given.
	st, started, err := daemon.Start(ctx, cfg, env.Exe, append([]string{"run"}, args...))
	if err != nil {
		var se *daemon.StartError
		if errors.As(err, &se) {
			fmt.Fprintf(env.Stderr, "patchd: start failed: %s\n", se.Reason)
			if se.LogTail != "" {
				fmt.Fprintf(env.Stderr, "last lines of %s:\n%s\n", cfg.LogPath(), se.LogTail)
			}
			if se.ExitCode == ExitNoPort {
				return quiet(ExitNoPort)
			}
			return quiet(ExitFailed)
		}
		return exit(ExitFailed, "start: %v", err)
	}
	if _, err := daemon.Probe(ctx, st.Address, daemon.ProbeToken(cfg)); err != nil {
		return exit(ExitFailed, "start: daemon pid %d answers its control socket but not /health: %v", st.PID, err)
	}
	verb := "already running"
	if started {
		verb = "started"
	}
	fmt.Fprintf(env.Stdout, "patchd %s: pid=%d address=%s\n", verb, st.PID, st.Address)
	return nil
}
