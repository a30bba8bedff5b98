package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// runSend is `patchd send FILE|-`: submit a patch to the running daemon.
// Exit 0 accepted, 1 refused. With --wait, exit 0 only once the patch is
// applied, 1 when it failed, ExitPending when it is not finished within
// the wait.
func runSend(ctx context.Context, env *Env, args []string) error {
	var (
		dryRun, asJSON bool
		wait           waitFlag
	)
	cfg, rest, err := parse(env, "send", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "print the diff the patch would produce (or why it would fail), change nothing")
		fs.Var(&wait, "wait", fmt.Sprintf("wait for the outcome: --wait (%s) or --wait=DURATION (at most %s); exit 0 applied, 1 failed, %d not finished yet", api.DefaultWait, api.MaxWait, ExitPending))
		fs.BoolVar(&asJSON, "json", false, "print the daemon's answer as JSON")
	})
	if err != nil {
		return err
	}
	if len(rest) == 2 && wait.d > 0 {
		if _, err := time.ParseDuration(rest[0]); err == nil {
			return exit(ExitUsage, "send: give --wait its duration with =: --wait=%s", rest[0])
		}
	}
	if len(rest) != 1 {
		return exit(ExitUsage, "send: want one FILE (or - for standard input), got %d arguments", len(rest))
	}
	if dryRun && wait.d > 0 {
		return exit(ExitUsage, "send: --wait and --dry-run do not go together (a dry run answers at once)")
	}
	var body []byte
	if rest[0] == "-" {
		body, err = io.ReadAll(env.Stdin)
	} else {
		body, err = os.ReadFile(rest[0])
	}
	if err != nil {
		return exit(ExitFailed, "send: %v", err)
	}
	c, err := newAPIClient(ctx, cfg)
	if err != nil {
		return err
	}
	path := "/webhook"
	switch {
	case dryRun:
		path = "/patches/preview"
	case wait.d > 0:
		path += "?wait=" + url.QueryEscape(wait.d.String())
	}
	code, resp, err := c.do(ctx, "POST", path, body)
	if err != nil {
		return exit(ExitFailed, "send: %v", err)
	}
	if asJSON {
		env.Stdout.Write(resp)
	}
	if code/100 != 2 {
		fmt.Fprintf(env.Stderr, "patchd: refused (HTTP %d): %s\n", code, errorOf(resp))
		return quiet(ExitFailed)
	}
	if dryRun {
		if asJSON {
			return nil
		}
		var p struct {
			Result api.PreviewResult `json:"result"`
		}
		json.Unmarshal(resp, &p)
		fmt.Fprintf(env.Stdout, "would apply: id=%s files=%s\n%s", p.Result.PatchID, strings.Join(p.Result.Files, ","), p.Result.Diff)
		return nil
	}
	var a sendAnswer
	json.Unmarshal(resp, &a)
	if wait.d > 0 {
		return waited(env, a, wait.d, asJSON)
	}
	if asJSON {
		return nil
	}
	note := ""
	if a.Result.Duplicate {
		note = " (already received)"
	}
	fmt.Fprintf(env.Stdout, "accepted: id=%s state=%s%s\n", a.Result.PatchID, a.Result.State, note)
	return nil
}

// sendAnswer is the webhook's answer as send reads it.
type sendAnswer struct {
	Status string `json:"status"`
	Result struct {
		api.SubmitResult
		Error string   `json:"error"`
		Code  string   `json:"code"`
		Files []string `json:"files"`
		Diff  string   `json:"diff"`
	} `json:"result"`
}

// waited reports the outcome of a send that waited: exit 0 applied, 1
// failed (or reverted since), ExitPending not finished within wait.
func waited(env *Env, a sendAnswer, wait time.Duration, quietOut bool) error {
	r := a.Result
	switch r.State {
	case api.StateApplied:
		if !quietOut {
			fmt.Fprintf(env.Stdout, "applied: id=%s files=%s\n%s", r.PatchID, strings.Join(r.Files, ","), r.Diff)
		}
		return nil
	case api.StateFailed:
		fmt.Fprintf(env.Stderr, "patchd: patch %s failed (%s): %s\n", r.PatchID, r.Code, r.Error)
		return quiet(ExitFailed)
	case api.StateReverted:
		fmt.Fprintf(env.Stderr, "patchd: patch %s was applied before, then reverted (the same id and body were received before)\n", r.PatchID)
		return quiet(ExitFailed)
	}
	fmt.Fprintf(env.Stderr, "patchd: patch %s is still %s (not finished within %s); it is stored and will be applied: check it with 'patchd patches show %s'\n",
		r.PatchID, r.State, wait, r.PatchID)
	return quiet(ExitPending)
}

// waitFlag is --wait: alone it is api.DefaultWait, with =DURATION (or a
// number of seconds) that wait, above 0 and at most api.MaxWait.
type waitFlag struct{ d time.Duration }

func (w *waitFlag) String() string {
	if w == nil || w.d == 0 {
		return ""
	}
	return w.d.String()
}

// IsBoolFlag lets --wait stand alone.
func (w *waitFlag) IsBoolFlag() bool { return true }

func (w *waitFlag) Set(v string) error {
	switch v {
	case "true":
		w.d = api.DefaultWait
		return nil
	case "false":
		w.d = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		if nerr != nil || math.IsNaN(n) || n <= 0 || n > api.MaxWait.Seconds() {
			return errors.New("want a duration such as 30s")
		}
		d = time.Duration(math.Round(n*1000)) * time.Millisecond
	}
	if d <= 0 || d > api.MaxWait {
		return fmt.Errorf("want a duration above 0 and at most %s", api.MaxWait)
	}
	w.d = d
	return nil
}
