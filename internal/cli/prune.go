package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
)

// pruneTimeout bounds `patchd patches prune`: a first prune of a long
// history can take a while.
const pruneTimeout = 30 * time.Minute

// runPrune is `patchd patches prune [--dry-run] [--retain …] [--json]`:
// retention now, by the running daemon over its control socket (which
// only its user can open), or over the store when no daemon runs. The
// daemon applies its own --retain unless this command was given one
// (flag or PATCHD_RETAIN); over the store, this command's applies.
func runPrune(ctx context.Context, env *Env, cfg *config.Config, args []string, dryRun, asJSON bool) error {
	req := daemon.PruneArgs{DryRun: dryRun}
	if retainGiven(args, env.Getenv) {
		req.Retain = cfg.Retain.String()
	}
	pctx, cancel := context.WithTimeout(ctx, pruneTimeout)
	defer cancel()
	var ans daemon.PruneAnswer
	err := control.CallWith(pctx, cfg.ControlPath(), daemon.CmdPrune, req, &ans)
	if errors.Is(err, control.ErrNotRunning) {
		ans, err = pruneOffline(pctx, cfg, dryRun)
	}
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return err
		}
		return exit(ExitFailed, "patches prune: %v", err)
	}
	if asJSON {
		data, _ := json.Marshal(ans)
		fmt.Fprintln(env.Stdout, string(data))
		return nil
	}
	printPrune(env.Stdout, ans)
	return nil
}

// retainGiven reports whether --retain was on the command line or in
// PATCHD_RETAIN: then it, not the daemon's, is the policy to apply.
func retainGiven(args []string, getenv func(string) string) bool {
	if getenv("PATCHD_RETAIN") != "" {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == config.SettingRetain {
			return true
		}
	}
	return false
}

// pruneOffline prunes over the store while no daemon runs: it takes the
// instance lock (so none starts meanwhile; one that does waits as a
// standby), opens the store and prunes with this command's --retain.
func pruneOffline(ctx context.Context, cfg *config.Config, dryRun bool) (daemon.PruneAnswer, error) {
	lock, err := instance.TryLock(cfg.LockPath())
	if errors.Is(err, instance.ErrLocked) {
		return daemon.PruneAnswer{}, exit(ExitFailed, "patches prune: a daemon holds %s but does not answer; stop it first", cfg.LockPath())
	}
	if err != nil {
		return daemon.PruneAnswer{}, err
	}
	defer lock.Release()
	st, err := store.Open(cfg.QueueDir(), store.Options{EventsPath: cfg.EventsPath()})
	if err != nil {
		return daemon.PruneAnswer{}, err
	}
	defer st.Close()
	// The service over the store alone: no workspace, no worker.
	var pruner api.Pruner = patchsvc.New(patchsvc.Options{Store: st, SummariesDir: cfg.SummariesDir})
	res, err := pruner.Prune(ctx, api.PruneRequest{MaxAge: cfg.Retain.MaxAge, MaxCount: cfg.Retain.MaxCount, DryRun: dryRun})
	if err != nil {
		return daemon.PruneAnswer{}, err
	}
	return daemon.PruneAnswer{Retain: cfg.Retain.String(), PruneResult: res, Daemon: "not running"}, nil
}

// printPrune says what a prune did, for a person.
func printPrune(w io.Writer, a daemon.PruneAnswer) {
	by := "the daemon"
	if a.Daemon != "running" {
		by = "no daemon was running"
	}
	fmt.Fprintf(w, "retention: %s (%s)\n", a.Retain, by)
	if a.Retain == "forever" {
		fmt.Fprintf(w, "nothing expires: %d patches kept\n", a.Kept)
		return
	}
	verb := "expired"
	if a.DryRun {
		verb = "would expire (dry run, nothing changed)"
	}
	if a.Expired == 0 {
		fmt.Fprintf(w, "%s: no patches\n", verb)
	} else {
		fmt.Fprintf(w, "%s: %d patches, received %s to %s\n", verb, a.Expired, stampOf(a.OldestExpired), stampOf(a.NewestExpired))
		fmt.Fprintf(w, "freed: %s of blobs and summaries; the expired patches' records hold %s of the journal\n", sizeOf(a.BytesFreed), sizeOf(a.JournalBytes))
	}
	kept := fmt.Sprintf("kept: %d patches", a.Kept)
	if a.Kept > 0 {
		kept += ", the oldest received " + stampOf(a.OldestKept)
	}
	fmt.Fprintln(w, kept)
	if a.Protected > 0 {
		fmt.Fprintf(w, "kept past the policy: %d (queued, applying, or needed to revert a file)\n", a.Protected)
	}
}

func stampOf(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// sizeOf renders a number of bytes for a person: 0 B, 512 B, 3.4 KiB, 12.0 MiB.
func sizeOf(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
