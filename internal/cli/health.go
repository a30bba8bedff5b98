package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/patchd/patchd/internal/daemon"
)

// runHealth is `patchd health [--json]`: 0 healthy, 1 unhealthy, 3 not running.
func runHealth(ctx context.Context, env *Env, args []string) error {
	var asJSON bool
	cfg, rest, err := parse(env, "health", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the /health answer as JSON")
	})
	if err != nil {
		return err
	}
	if err := noArgs("health", rest); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := daemon.Query(qctx, cfg)
	if err != nil && !isNotRunning(cfg, err) {
		// Something holds the lock but does not answer: hung, not gone.
		reason := unresponsive(cfg, err)
		if asJSON {
			data, _ := json.Marshal(map[string]any{"status": "unhealthy", "error": reason})
			fmt.Fprintln(env.Stdout, string(data))
		} else {
			fmt.Fprintf(env.Stdout, "patchd unhealthy: %s\n", reason)
		}
		return quiet(ExitFailed)
	}
	if err != nil {
		if asJSON {
			data, _ := json.Marshal(notRunning(cfg))
			fmt.Fprintln(env.Stdout, string(data))
		} else {
			fmt.Fprintf(env.Stdout, "patchd not running (%s)\n", notRunning(cfg)["reason"])
		}
		return quiet(ExitNotRunning)
	}
	h, err := daemon.Probe(ctx, st.Address, daemon.ProbeToken(cfg))
	if asJSON {
		out := any(h)
		if err != nil {
			out = map[string]any{"status": "unhealthy", "error": err.Error(), "pid": st.PID, "address": st.Address}
		}
		data, _ := json.Marshal(out)
		fmt.Fprintln(env.Stdout, string(data))
	}
	if err != nil {
		if !asJSON {
			fmt.Fprintf(env.Stdout, "patchd unhealthy: pid=%d address=%s: %v\n", st.PID, st.Address, err)
		}
		return quiet(ExitFailed)
	}
	if !asJSON {
		fmt.Fprintf(env.Stdout, "patchd healthy: pid=%d address=%s uptime=%.1fs\n", h.PID, st.Address, h.UptimeSeconds)
	}
	return nil
}
