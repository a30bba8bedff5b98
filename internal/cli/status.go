package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
	"github.com/patchd/patchd/internal/instance"
)

// runStatus is `patchd status [--json]`: exit 0 running, 3 not running.
func runStatus(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	cfg, rest, err := parse(env, "status", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	if err := noArgs("status", rest); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := daemon.Query(qctx, cfg)
	if err != nil && !isNotRunning(cfg, err) {
		// It runs (holds the lock) but does not answer: hung, or still
		// starting. Exit 1, as `health` does.
		reason := unresponsive(cfg, err)
		if asJSON {
			data, _ := json.Marshal(map[string]any{"running": true, "healthy": false, "reason": reason, "state_dir": cfg.StateDir, "workspace": cfg.Workspace})
			fmt.Fprintln(env.Stdout, string(data))
		} else {
			fmt.Fprintf(env.Stdout, "patchd running but not answering: %s\n", reason)
		}
		return quiet(ExitFailed)
	}
	if err != nil {
		st = daemon.Status{Running: false, StateDir: cfg.StateDir, Workspace: cfg.Workspace}
	}
	if asJSON {
		out := any(st)
		if err != nil {
			out = notRunning(cfg)
		}
		data, _ := json.Marshal(out)
		fmt.Fprintln(env.Stdout, string(data))
	} else if err == nil {
		fmt.Fprintf(env.Stdout, "patchd running: pid=%d address=%s uptime=%s version=%s\n",
			st.PID, st.Address, time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second), st.Version)
		fmt.Fprintf(env.Stdout, "workspace: %s\nstate dir: %s\nstandbys: %d\n", st.Workspace, st.StateDir, st.Standbys)
		if st.Queue != nil {
			q, _ := json.Marshal(st.Queue)
			fmt.Fprintf(env.Stdout, "queue: %s\n", q)
		}
		for _, n := range st.Notify {
			line := fmt.Sprintf("notify: %s (%s, %s) pending=%d delivered=%d failed=%d gave_up=%d dropped=%d",
				n.Receiver, n.Kind, strings.Join(n.Events, ","), n.Pending, n.Delivered, n.Failed, n.GaveUp, n.Dropped)
			if n.LastError != "" {
				line += fmt.Sprintf(" last_error=%q at %s", n.LastError, n.LastErrorAt.Format(time.RFC3339))
			}
			fmt.Fprintln(env.Stdout, line)
		}
		if n := st.NATS; n != nil {
			line := fmt.Sprintf("nats: %s workspace=%s connected=%t", n.URL, n.Workspace, n.Connected)
			if n.Error != "" {
				line += fmt.Sprintf(" error=%q", n.Error)
			}
			// Of two runners of the workspace, the one NATS gives the
			// patches to, or the one waiting.
			if n.Pinned {
				line += " pinned"
			} else if n.Standby {
				line += " standby"
			}
			fmt.Fprintln(env.Stdout, line)
		}
	} else {
		fmt.Fprintf(env.Stdout, "patchd not running (%s)\n", notRunning(cfg)["reason"])
	}
	if err != nil {
		return quiet(ExitNotRunning)
	}
	return nil
}

// notRunning explains why no daemon answered, when nothing holds the lock.
func notRunning(cfg *config.Config) map[string]any {
	return map[string]any{"running": false, "reason": "no instance holds " + cfg.LockPath(), "state_dir": cfg.StateDir, "workspace": cfg.Workspace}
}

// unresponsive explains why a daemon that runs did not answer.
func unresponsive(cfg *config.Config, err error) string {
	reason := "an instance holds " + cfg.LockPath() + " but does not answer on " + cfg.ControlPath() + " (starting, or hung)"
	if !errors.Is(err, control.ErrNotRunning) {
		reason += ": " + err.Error()
	}
	return reason
}

// isNotRunning reports whether err means no instance at all: nothing answers
// and nothing holds the lock.
func isNotRunning(cfg *config.Config, err error) bool {
	if !errors.Is(err, control.ErrNotRunning) {
		return false
	}
	held, _ := instance.Held(cfg.LockPath())
	return !held
}
