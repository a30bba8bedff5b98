package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
	"github.com/patchd/patchd/internal/gatewayd"
	"github.com/patchd/patchd/internal/instance"
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
		// A gateway's state dir has no daemon, but something runs there:
		// "not running" would make its user believe it stopped.
		if held, _ := instance.Held(gatewayd.LockPath(cfg.StateDir)); held {
			return exit(ExitFailed, "stop: no daemon runs with this state dir, but a patchd gateway does; patchd stop does not stop a gateway: stop it with its supervisor, or send it SIGTERM")
		}
		fmt.Fprintln(env.Stdout, "patchd was not running")
		return nil
	}
	if err != nil {
		return exit(ExitFailed, "stop: %v", err)
	}
	// Wait for the standbys, the drain and a margin for the exit itself.
	wctx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout+20*time.Second)
	defer cancel()
	var res struct {
		Standbys []int `json:"standbys"`
	}
	err = control.CallAndWait(wctx, cfg.ControlPath(), "stop", &res)
	if errors.Is(err, control.ErrNotRunning) || errors.Is(err, control.ErrNoAnswer) {
		err = nil // it went away between our two calls
	}
	if err != nil {
		return exit(ExitFailed, "stop pid %d: %v", st.PID, err)
	}
	fmt.Fprintf(env.Stdout, "patchd stopped: pid=%d%s\n", st.PID, standbysStopped(res.Standbys))
	return nil
}

// standbysStopped says which standbys a stop ended, if any.
func standbysStopped(pids []int) string {
	if len(pids) == 0 {
		return ""
	}
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	noun := "standbys"
	if len(pids) == 1 {
		noun = "standby"
	}
	return fmt.Sprintf(" and %d %s (pid %s)", len(pids), noun, strings.Join(s, ", "))
}
