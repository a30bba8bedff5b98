package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// runSend is `patchd send FILE|-`: submit a patch to the running daemon.
// Exit 0 accepted, 1 refused.
func runSend(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "send", args, nil)
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
	code, resp, err := c.do(ctx, "POST", "/webhook", body)
	if err != nil {
		return exit(ExitFailed, "send: %v", err)
	}
	if code/100 != 2 {
		fmt.Fprintf(env.Stderr, "patchd: refused (HTTP %d): %s\n", code, errorOf(resp))
		return quiet(ExitFailed)
	}
	var a struct {
		Result struct {
			PatchID   string `json:"patch_id"`
			State     string `json:"state"`
			Duplicate bool   `json:"duplicate"`
		} `json:"result"`
	}
	json.Unmarshal(resp, &a)
	note := ""
	if a.Result.Duplicate {
		note = " (already received)"
	}
	fmt.Fprintf(env.Stdout, "accepted: id=%s state=%s%s\n", a.Result.PatchID, a.Result.State, note)
	return nil
}
