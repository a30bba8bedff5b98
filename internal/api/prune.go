package api

import (
	"context"
	"time"
)

// Pruner runs retention now: `patchd patches prune`, and the daemon's
// own schedule. It is not part of Service on purpose: no door offers it,
// so that a client holding the webhook token cannot erase the history;
// the CLI reaches it through the daemon's control socket, which only the
// daemon's user can open, or over the store when no daemon runs.
type Pruner interface {
	// Prune expires the patches the policy selects (see PruneRequest),
	// never a queued or applying one nor one a revert of a file needs,
	// and deletes their blobs and summaries. An expired patch's id then
	// answers Kind gone, code expired.
	Prune(ctx context.Context, req PruneRequest) (PruneResult, error)
}

// PruneRequest is a retention policy to apply now. With neither MaxAge
// nor MaxCount set, nothing expires.
type PruneRequest struct {
	// MaxAge expires patches received longer ago than this; 0: no limit.
	MaxAge time.Duration
	// MaxCount expires patches beyond the newest MaxCount; 0: no limit.
	MaxCount int
	// DryRun selects the same patches and changes nothing.
	DryRun bool
}

// PruneResult says what a prune expired (a dry run: would expire).
type PruneResult struct {
	DryRun bool `json:"dry_run"`
	// Expired counts the patches expired; OldestExpired and
	// NewestExpired are when the first and last of them were received.
	Expired       int       `json:"expired"`
	OldestExpired time.Time `json:"oldest_expired,omitzero"`
	NewestExpired time.Time `json:"newest_expired,omitzero"`
	// Kept counts the patches left, and OldestKept is when the oldest of
	// them was received.
	Kept       int       `json:"kept"`
	OldestKept time.Time `json:"oldest_kept,omitzero"`
	// Protected counts the patches the policy selects but which stay:
	// queued or applying, or needed to revert a file.
	Protected int `json:"protected"`
	// BytesFreed is the size of the blobs and summaries deleted.
	BytesFreed int64 `json:"bytes_freed"`
	// JournalBytes is what the expired patches' records take in the
	// journal (the store says when that space is given back).
	JournalBytes int64 `json:"journal_bytes"`
}
