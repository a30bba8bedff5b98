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

// patchesSubs are the verbs of `patchd patches`, each with the flags
// that apply to it (one FlagSet parses them all; a flag of another verb
// is refused).
func patchesSubs() []subcommand {
	return []subcommand{
		{name: "list", summary: "the patches, newest first", usage: "[--state STATE] [--limit N] [--cursor C] [--json] [flags]",
			example: "patchd patches list --state failed --limit 5\npatchd patches list --json | jq -r '.patches[].id'", own: []string{"json", "limit", "state", "cursor"}},
		{name: "show", summary: "one patch with its diff and its earlier attempts", usage: "ID [--json] [flags]",
			example: "patchd patches show P1", own: []string{"json"}},
		{name: "revert", summary: "undo an applied patch", usage: "ID [--wait DURATION] [--json] [flags]",
			example: "patchd patches revert P1 --wait 20s", own: []string{"json", "wait"}},
		{name: "drop", summary: "drop a queued patch (also with no daemon running)", usage: "ID [--json] [flags]",
			example: "patchd patches drop P1", own: []string{"json"}},
		{name: "prune", summary: "apply retention now: expire what the policy selects", usage: "[--dry-run] [--retain POLICY] [--json] [flags]",
			example: "patchd patches prune --dry-run --retain 30d", own: []string{"json", "dry-run", "retain"}},
		{name: "watch", summary: "follow the events as they happen, until interrupted", usage: "[--json] [--after N] [flags]",
			example: "patchd patches watch\npatchd patches watch --json --after 0 | jq .", own: []string{"json", "after"}},
	}
}

// runPatches is `patchd patches list|show ID|revert ID|drop ID|prune|watch`.
func runPatches(ctx context.Context, env *Env, args []string) error {
	var asJSON, dryRun bool
	var limit int
	var after int64
	var state, cursor string
	var wait time.Duration
	var fset *flag.FlagSet
	cfg, rest, err := parse(env, "patches", args, func(fs *flag.FlagSet) {
		fset = fs
		fs.DurationVar(&wait, "wait", 0, "how long to wait for a worker busy applying a patch (default and at most 20s)")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.IntVar(&limit, "limit", 20, "how many patches")
		fs.StringVar(&state, "state", "", "only patches in this state (queued, applying, applied, failed, reverted, dropped)")
		fs.StringVar(&cursor, "cursor", "", "the page after this one: the next_cursor of the previous page")
		fs.BoolVar(&dryRun, "dry-run", false, "say what would expire, change nothing")
		fs.Int64Var(&after, "after", -1, "start after this event_id (0: every event kept); default: the next event")
	})
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return exit(ExitUsage, "patches: want list, show ID, revert ID, drop ID, prune or watch; see 'patchd help patches'")
	}
	verb, rest := rest[0], rest[1:]
	wantArgs := map[string]int{"list": 0, "show": 1, "revert": 1, "drop": 1, "prune": 0, "watch": 0}
	n, ok := wantArgs[verb]
	if !ok && len(rest) == 0 {
		return unknownSub("patches", commands()["patches"], verb)
	}
	if !ok || len(rest) != n {
		return exit(ExitUsage, "patches: want list, show ID, revert ID, drop ID, prune or watch, not %q; see 'patchd help patches'", strings.Join(append([]string{verb}, rest...), " "))
	}
	if err := verbFlags(fset, verb); err != nil {
		return err
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
		if cursor != "" {
			q.Set("cursor", cursor)
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
		color := useColor(env)
		for _, p := range l.Patches {
			st := fmt.Sprintf("%-9s", p.State)
			if color {
				st = eventColor(p.State) + st + "\x1b[0m"
			}
			line := fmt.Sprintf("%-24s %s %-40s %s", p.ID, st, p.TargetFile, p.ReceivedAt.Local().Format(time.DateTime))
			if p.Error != "" {
				line += "  " + p.Error
			}
			fmt.Fprintln(env.Stdout, line)
		}
		if len(l.Patches) == 0 {
			fmt.Fprintln(env.Stdout, "no patches")
		}
		if l.NextCursor != "" {
			// On stderr, so that the lines on stdout stay one a patch.
			fmt.Fprintf(env.Stderr, "more: patchd patches list --cursor %s\n", l.NextCursor)
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

// verbFlags refuses a flag of patches given to a verb it does not apply
// to (--after to list), in one line naming the verbs it is for.
func verbFlags(fs *flag.FlagSet, verb string) error {
	sub, _ := findSub(commands()["patches"], verb)
	own := map[string]bool{}
	for _, s := range patchesSubs() {
		for _, f := range s.own {
			own[f] = true
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil || !own[f.Name] || f.Name == config.SettingRetain || contains(sub.own, f.Name) {
			return
		}
		var verbs []string
		for _, s := range patchesSubs() {
			if contains(s.own, f.Name) {
				verbs = append(verbs, s.name)
			}
		}
		err = exit(ExitUsage, "patches %s: --%s is a flag of patches %s, not of %s; see 'patchd help patches %s'", verb, f.Name, strings.Join(verbs, ", "), verb, verb)
	})
	return err
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
