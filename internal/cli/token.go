package cli

import (
	"context"
	"fmt"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/daemon"
)

// runToken is `patchd token`: print the webhook token alone, creating it if
// no daemon has yet (so it can be configured before the first start).
func runToken(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "token", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("token", rest); err != nil {
		return err
	}
	if err := daemon.PrepareStateDir(cfg.StateDir); err != nil {
		return exit(ExitFailed, "%v", err)
	}
	tok, err := auth.LoadOrCreateToken(cfg.TokenPath())
	if err != nil {
		return exit(ExitFailed, "token: %v", err)
	}
	fmt.Fprintln(env.Stdout, tok)
	return nil
}
