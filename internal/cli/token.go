package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
)

// tokenAnswer is `patchd token --json`.
type tokenAnswer struct {
	Token   string `json:"token"`
	Rotated bool   `json:"rotated,omitempty"`
	// Daemon says whether a running daemon put the new token in force
	// ("reloaded", with its PID) or none runs ("not running"; it reads the
	// token when it starts).
	Daemon string `json:"daemon,omitempty"`
	PID    int    `json:"pid,omitempty"`
}

// runToken is `patchd token [--rotate] [--json]`: print the webhook token
// alone, creating it if no daemon has yet (so it can be configured before
// the first start). With --rotate, replace it with a new one and have the
// running daemon, if any, put it in force at once: the old token is
// refused from then, without a restart.
func runToken(ctx context.Context, env *Env, args []string) error {
	var rotate, asJSON bool
	cfg, rest, err := parse(env, "token", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&rotate, "rotate", false, "replace the token with a new one; a running daemon refuses the old one from then")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	if err := noArgs("token", rest); err != nil {
		return err
	}
	if err := daemon.PrepareStateDir(cfg.StateDir); err != nil {
		return exit(ExitFailed, "%v", err)
	}
	out := tokenAnswer{}
	if !rotate {
		if out.Token, err = auth.LoadOrCreateToken(cfg.TokenPath()); err != nil {
			return exit(ExitFailed, "token: %v", err)
		}
		return printToken(env, out, asJSON)
	}
	if cfg.NoAuth {
		return exit(ExitUsage, "token --rotate: patchd is configured with --no-auth, which checks no token")
	}
	if out.Token, err = auth.RotateToken(cfg.TokenPath()); err != nil {
		return exit(ExitFailed, "token --rotate: %v", err)
	}
	out.Rotated = true
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var res daemon.TokenReloaded
	switch err := control.Call(cctx, cfg.ControlPath(), daemon.CmdReloadToken, &res); {
	case errors.Is(err, control.ErrNotRunning):
		out.Daemon = "not running"
	case err != nil:
		return exit(ExitFailed, "token --rotate: the new token is in %s, but the running daemon did not take it: %v; run 'patchd restart' to put it in force", cfg.TokenPath(), err)
	default:
		out.Daemon, out.PID = "reloaded", res.PID
	}
	if !asJSON {
		if out.Daemon == "reloaded" {
			fmt.Fprintf(env.Stderr, "patchd: token rotated; the running daemon (pid %d) refuses the old one from now on\n", out.PID)
		} else {
			fmt.Fprintln(env.Stderr, "patchd: token rotated; no daemon runs, it takes the new one when it starts")
		}
	}
	return printToken(env, out, asJSON)
}

// printToken prints the token alone, or the answer as JSON.
func printToken(env *Env, out tokenAnswer, asJSON bool) error {
	if !asJSON {
		fmt.Fprintln(env.Stdout, out.Token)
		return nil
	}
	data, _ := json.Marshal(out)
	fmt.Fprintln(env.Stdout, string(data))
	return nil
}
