package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
)

// retentionEvery is how often the daemon applies --retain, after the
// first prune.
const retentionEvery = time.Hour

// retentionFirst is how long after the daemon serves it first applies
// --retain. Not at once: even with nothing to expire, a prune reads the
// oldest patches in index.db, 6-10 ms of CPU in a fresh process at
// 1,000,000 patches, which took the second core from the first requests
// of a start or takeover (2 cores here) and delayed them by as much.
const retentionFirst = 5 * time.Second

// startRetention prunes the history by the policy in the background,
// retentionFirst after the daemon serves (never on the way to healthy),
// and then every retentionEvery, until the stack goes down
// (endRetention). Nothing runs when the policy keeps everything.
func (st *stack) startRetention(r config.Retain, log *slog.Logger) {
	if r.Off() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	st.endRetention = func() {
		cancel()
		<-done
	}
	var pruner api.Pruner = st.in.svc
	go func() {
		defer close(done)
		t := time.NewTimer(retentionFirst)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := pruner.Prune(ctx, api.PruneRequest{MaxAge: r.MaxAge, MaxCount: r.MaxCount}); err != nil && ctx.Err() == nil {
				log.Warn("retention: the prune failed; it runs again later", "retain", r.String(), "err", err)
			}
			t.Reset(retentionEvery)
		}
	}()
}

// CmdPrune is the control command of `patchd patches prune`: the daemon
// prunes now, by its own --retain or the one PruneArgs gives.
const CmdPrune = "prune"

// PruneArgs are CmdPrune's arguments.
type PruneArgs struct {
	// Retain is a --retain value to apply instead of the daemon's; "" for
	// the daemon's own.
	Retain string `json:"retain,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// PruneAnswer is the answer to CmdPrune and what `patchd patches prune
// --json` prints: the policy applied and what it did.
type PruneAnswer struct {
	Retain string `json:"retain"`
	api.PruneResult
	// Daemon is "running" when the daemon pruned, "not running" when the
	// CLI did over the store.
	Daemon string `json:"daemon"`
}

// prune answers CmdPrune.
func (s *session) prune(ctx context.Context, raw json.RawMessage) (any, bool, error) {
	var args PruneArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, false, fmt.Errorf("prune: bad arguments: %w", err)
		}
	}
	pol := s.cfg.Retain
	if args.Retain != "" {
		p, err := config.ParseRetain(args.Retain)
		if err != nil {
			return nil, false, fmt.Errorf("--%s: %w", config.SettingRetain, err)
		}
		pol = p
	}
	cur := s.current()
	if cur == nil {
		return nil, false, errors.New("prune: the daemon is not serving")
	}
	var pruner api.Pruner = cur.in.svc
	res, err := pruner.Prune(ctx, api.PruneRequest{MaxAge: pol.MaxAge, MaxCount: pol.MaxCount, DryRun: args.DryRun})
	if err != nil {
		return nil, false, err
	}
	return PruneAnswer{Retain: pol.String(), PruneResult: res, Daemon: "running"}, false, nil
}
