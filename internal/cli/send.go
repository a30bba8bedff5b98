package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/patchd/patchd/internal/api"
)

// runSend is `patchd send FILE|-`: submit a patch to the running daemon.
// Exit 0 accepted, 1 refused.
func runSend(ctx context.Context, env *Env, args []string) error {
	var dryRun bool
	cfg, rest, err := parse(env, "send", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "print the diff the patch would produce (or why it would fail), change nothing")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return exit(ExitUsage, "send: want one FILE (or - for standard input), got %d arguments", len(rest))
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
	if dryRun {
		path = "/patches/preview"
	}
	code, resp, err := c.do(ctx, "POST", path, body)
	if err != nil {
		return exit(ExitFailed, "send: %v", err)
	}
	if code/100 != 2 {
		fmt.Fprintf(env.Stderr, "patchd: refused (HTTP %d): %s\n", code, errorOf(resp))
		return quiet(ExitFailed)
	}
	if dryRun {
		var p struct {
			Result api.PreviewResult `json:"result"`
		}
		json.Unmarshal(resp, &p)
		fmt.Fprintf(env.Stdout, "would apply: id=%s files=%s\n%s", p.Result.PatchID, strings.Join(p.Result.Files, ","), p.Result.Diff)
		return nil
	}
	var a struct {
		Result api.SubmitResult `json:"result"`
	}
	json.Unmarshal(resp, &a)
	note := ""
	if a.Result.Duplicate {
		note = " (already received)"
	}
	fmt.Fprintf(env.Stdout, "accepted: id=%s state=%s%s\n", a.Result.PatchID, a.Result.State, note)
	return nil
}
