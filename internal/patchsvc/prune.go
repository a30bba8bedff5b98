package patchsvc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
)

var _ api.Pruner = (*Service)(nil)

// Prune implements api.Pruner: the store expires the patches (and their
// blobs), then their summaries are deleted, the dated one and a flat
// <id>.md an older patchd wrote. A prune cut short (ctx, a full disk)
// answers what it did with the error.
func (s *Service) Prune(ctx context.Context, req api.PruneRequest) (api.PruneResult, error) {
	if req.MaxAge < 0 || req.MaxCount < 0 {
		return api.PruneResult{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "retain", "retention limits must not be negative")
	}
	if req.MaxAge == 0 && req.MaxCount == 0 {
		// Retention is off: nothing to look at.
		st := s.st.Stats()
		return api.PruneResult{DryRun: req.DryRun, Kept: st.Total}, nil
	}
	res, err := s.st.Prune(ctx, store.PrunePolicy{MaxAge: req.MaxAge, MaxCount: req.MaxCount}, req.DryRun)
	out := api.PruneResult{
		DryRun: req.DryRun, Expired: len(res.Expired), Kept: res.Kept, OldestKept: res.OldestKept,
		Protected: res.Protected, BytesFreed: res.BlobBytes, JournalBytes: res.JournalBytes,
	}
	days := map[string]bool{}
	for _, p := range res.Expired {
		if out.OldestExpired.IsZero() || p.ReceivedAt.Before(out.OldestExpired) {
			out.OldestExpired = p.ReceivedAt
		}
		if p.ReceivedAt.After(out.NewestExpired) {
			out.NewestExpired = p.ReceivedAt
		}
		if s.sumDir == "" {
			continue
		}
		dated := worker.SummaryPath(s.sumDir, p.ID, p.ReceivedAt)
		days[filepath.Dir(dated)] = true
		for _, path := range []string{dated, filepath.Join(s.sumDir, p.ID+".md")} {
			out.BytesFreed += s.removeSummary(path, req.DryRun)
		}
	}
	if !req.DryRun {
		// A day's directory goes with its last summary, then its month's
		// and year's; Remove fails on (and keeps) any that is not empty.
		for day := range days {
			for d := day; d != s.sumDir && len(d) > len(s.sumDir); d = filepath.Dir(d) {
				if os.Remove(d) != nil {
					break
				}
			}
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return out, api.Errorf(api.KindUnavailable, api.CodeStoreUnavailable, "", "prune cut short after %d patches: %v", out.Expired, err)
		}
		return out, s.refuse(refusal{}, err)
	}
	if out.Expired > 0 && !req.DryRun {
		s.log.Info("retention: patches expired", "expired", out.Expired, "kept", out.Kept,
			"protected", out.Protected, "bytes_freed", out.BytesFreed, "oldest_kept", out.OldestKept.Format(time.RFC3339))
	}
	return out, nil
}

// removeSummary deletes a summary (not in a dry run) and returns its size;
// a missing one is 0.
func (s *Service) removeSummary(path string, dryRun bool) int64 {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	if dryRun {
		return fi.Size()
	}
	if err := os.Remove(path); err != nil {
		s.log.Warn("retention: remove the summary of an expired patch", "path", s.hide(path), "err", s.hide(err.Error()))
		return 0
	}
	return fi.Size()
}
