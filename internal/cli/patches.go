package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
)

// runPatches is `patchd patches list|show ID|revert ID|drop ID|prune|watch`.
func runPatches(ctx context.Context, env *Env, args []string) error {
	var asJSON, dryRun bool
	var limit int
	var after int64
	var state string
	var wait time.Duration
	cfg, rest, err := parse(env, "patches", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&wait, "wait", 0, "revert: how long to wait for a worker busy applying a patch (default and at most 20s)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.IntVar(&limit, "limit", 20, "list: how many patches")
		fs.StringVar(&state, "state", "", "list: only patches in this state")
		fs.BoolVar(&dryRun, "dry-run", false, "prune: say what would expire, change nothing")
		fs.Int64Var(&after, "after", -1, "watch: start after this event_id (0: every event kept); default: the next event")
	})
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return exit(ExitUsage, "patches: want list, show ID, revert ID, drop ID, prune or watch")
	}
	verb, rest := rest[0], rest[1:]
	wantArgs := map[string]int{"list": 0, "show": 1, "revert": 1, "drop": 1, "prune": 0, "watch": 0}
	n, ok := wantArgs[verb]
	if !ok || len(rest) != n {
		return exit(ExitUsage, "patches: want list, show ID, revert ID, drop ID, prune or watch, not %q", strings.Join(append([]string{verb}, rest...), " "))
	}
	if verb == "prune" {
		return runPrune(ctx, env, cfg, args, dryRun, asJSON)
	}
	if verb == "watch" {
		return runWatch(ctx, env, cfg, asJSON, after)
	}
	c, err := newAPIClient(ctx, cfg)
	var ee *ExitError
	if verb == "drop" && errors.As(err, &ee) && ee.Code == ExitNotRunning {
		// The way out of a patch that keeps the daemon from starting.
		return dropOffline(ctx, env, cfg, rest[0])
	}
	if err != nil {
		return err
	}
	var code int
	var body []byte
	switch verb {
	case "list":
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if state != "" {
			q.Set("state", state)
		}
		code, body, err = c.do(ctx, "GET", "/patches?"+q.Encode(), nil)
	case "show":
		code, body, err = c.do(ctx, "GET", "/patches/"+url.PathEscape(rest[0]), nil)
	case "revert":
		path := "/patches/" + url.PathEscape(rest[0]) + "/revert"
		if wait > 0 {
			path += "?" + url.Values{"wait": {wait.String()}}.Encode()
		}
		code, body, err = c.do(ctx, "POST", path, nil)
	case "drop":
		code, body, err = c.do(ctx, "DELETE", "/patches/"+url.PathEscape(rest[0]), nil)
	}
	if err != nil {
		return exit(ExitFailed, "patches %s: %v", verb, err)
	}
	if code/100 != 2 {
		fmt.Fprintf(env.Stderr, "patchd: %s refused (HTTP %d): %s\n", verb, code, errorOf(body))
		return quiet(ExitFailed)
	}
	if asJSON {
		fmt.Fprintln(env.Stdout, strings.TrimSpace(string(body)))
		return nil
	}
	switch verb {
	case "list":
		var l api.PatchList
		json.Unmarshal(body, &l)
		for _, p := range l.Patches {
			line := fmt.Sprintf("%-24s %-9s %-40s %s", p.ID, p.State, p.TargetFile, p.ReceivedAt.Local().Format(time.DateTime))
			if p.Error != "" {
				line += "  " + p.Error
			}
			fmt.Fprintln(env.Stdout, line)
		}
		if len(l.Patches) == 0 {
			fmt.Fprintln(env.Stdout, "no patches")
		}
	case "show":
		var p api.PatchView
		json.Unmarshal(body, &p)
		fmt.Fprintf(env.Stdout, "id: %s\nstate: %s\nrole: %s\ntarget: %s\nreceived: %s\n", p.ID, p.State, p.Role, p.TargetFile, p.ReceivedAt.Local().Format(time.RFC3339))
		if p.Description != "" {
			fmt.Fprintf(env.Stdout, "description: %s\n", p.Description)
		}
		if p.Error != "" {
			fmt.Fprintf(env.Stdout, "error: %s\n", p.Error)
		}
		if p.Attempt > 0 {
			fmt.Fprintf(env.Stdout, "attempt: %d\n", p.Attempt)
		}
		for _, a := range p.Attempts {
			code := ""
			if a.Code != "" {
				code = " (" + a.Code + ")"
			}
			fmt.Fprintf(env.Stdout, "attempt %d: failed%s: %s\n", a.Attempt, code, a.Error)
		}
		if p.DurationMS > 0 {
			fmt.Fprintf(env.Stdout, "duration: %.2fms\n", p.DurationMS)
		}
		if p.Diff != "" {
			fmt.Fprintf(env.Stdout, "\n%s", p.Diff)
		}
		// A long diff comes in parts (GET /patches/{id}?diff_offset=).
		for next := p.DiffNext; next > 0; {
			code, body, err := c.do(ctx, "GET", "/patches/"+url.PathEscape(rest[0])+"?diff_offset="+strconv.Itoa(next), nil)
			if err != nil || code != 200 {
				return exit(ExitFailed, "patches show: the diff from byte %d: HTTP %d %v %s", next, code, err, errorOf(body))
			}
			var part api.PatchView
			if err := json.Unmarshal(body, &part); err != nil || part.DiffOffset != next {
				return exit(ExitFailed, "patches show: the diff from byte %d: unexpected answer", next)
			}
			fmt.Fprint(env.Stdout, part.Diff)
			next = part.DiffNext
		}
	case "revert":
		fmt.Fprintf(env.Stdout, "reverted: id=%s\n", rest[0])
	case "drop":
		fmt.Fprintf(env.Stdout, "dropped: id=%s\n", rest[0])
	}
	return nil
}

// dropOffline drops a queued patch while no daemon runs: it takes the
// instance lock (so none starts meanwhile; one that does waits as a
// standby), opens the store, and records the drop.
func dropOffline(ctx context.Context, env *Env, cfg *config.Config, id string) error {
	lock, err := instance.TryLock(cfg.LockPath())
	if errors.Is(err, instance.ErrLocked) {
		return exit(ExitFailed, "drop %s: a daemon holds %s but does not answer; stop it first", id, cfg.LockPath())
	}
	if err != nil {
		return exit(ExitFailed, "drop %s: %v", id, err)
	}
	defer lock.Release()
	st, err := store.Open(cfg.QueueDir(), store.Options{EventsPath: cfg.EventsPath(), EventsMaxBytes: cfg.EventsMaxBytes()})
	if err != nil {
		return exit(ExitFailed, "drop %s: %v", id, err)
	}
	defer st.Close()
	// The service over the store alone: no workspace, no worker.
	_, err = patchsvc.New(patchsvc.Options{Store: st}).Drop(ctx, id)
	if e := api.ErrorOf(err); e != nil {
		if e.Kind == api.KindNotFound || e.Kind == api.KindConflict {
			return exit(ExitFailed, "drop refused: %s", e.Message)
		}
		cause := error(e)
		if e.Err != nil {
			cause = e.Err
		}
		return exit(ExitFailed, "drop %s: %v", id, cause)
	}
	fmt.Fprintf(env.Stdout, "dropped: id=%s (no daemon was running)\n", id)
	return nil
}
