// Package api is patchd's application API: the use cases every way in (the
// HTTP server, the CLI, and later MCP, the dashboard and the NATS runner)
// calls, and the types they answer with. It is a leaf: the standard library
// only, no store, no worker, no transport.
//
// A door (a transport) authenticates, limits and reads its request, makes
// one call to a Service, and renders the answer or the *Error. The Service
// (package patchsvc) does the rest: parsing and confining patches, the
// store, the worker. Errors are mapped once, into *Error, whose Kind each
// door turns into its own status (an HTTP status, an exit code, an MCP
// isError) and whose Code and Field it passes on unchanged.
package api

import (
	"context"
	"time"
)

// Service is the application API. Every method is safe for concurrent use.
// An error it returns is an *Error (ErrorOf finds it); a door shows its
// Message, Code and Field, and picks its status from Kind.
type Service interface {
	// Submit parses the raw body of a patch block, confines its paths to
	// the workspace, and stores it durably; the worker applies it later.
	// Resending the same id with the same body answers the stored patch
	// with Duplicate set; the same id with another body is a conflict,
	// unless the patch failed: then it is a new attempt under that id
	// (queued again behind the patches queued before, Attempt set, the
	// failed attempt kept in the patch's Attempts).
	// Once the body is handed to the store the submission is carried
	// through even if ctx ends (the patch may land anyway, and the sender
	// deserves the answer); ctx bounds nothing after that point.
	Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error)
	// Preview answers the diff the block would make, or the refusal it
	// would fail with (Kind unprocessable), without storing or writing
	// anything. Planning stops when ctx ends.
	Preview(ctx context.Context, req PreviewRequest) (PreviewResult, error)
	// Get returns one patch with its diff and files.
	Get(ctx context.Context, id string) (PatchView, error)
	// List returns a page of patches, newest first, without diffs.
	List(ctx context.Context, opts ListOptions) (PatchList, error)
	// Revert restores the files of an applied patch byte for byte. It
	// waits for the worker (a patch being applied) only as long as ctx
	// allows (then Kind unavailable, code worker_busy, nothing done); once
	// it has started restoring files it is carried through and recorded
	// regardless of ctx.
	Revert(ctx context.Context, id string) (PatchView, error)
	// Drop fails a queued patch without applying it; any other state is
	// a conflict naming it.
	Drop(ctx context.Context, id string) (PatchView, error)
	// Wait returns the patch once it is finished (applied, failed or
	// reverted), at once if it is already. When ctx ends first it returns
	// the patch as it stands and ctx's error.
	Wait(ctx context.Context, id string) (PatchView, error)
	// Status reports the queue's counts and the last event's number.
	Status(ctx context.Context) (Status, error)
	// Subscribe delivers every event numbered after afterEventID, in order
	// and without gaps, then each new one as it is committed, until ctx
	// ends or the subscription is ended (see Subscription). Pass 0 for
	// the whole history the store keeps, Status().LastEventID for only
	// what comes next. A start that can no longer be served is an *Error
	// of Kind gone (code events_lost): read the state again (List) and
	// subscribe after the LastEventID taken before reading it.
	Subscribe(ctx context.Context, afterEventID uint64) (Subscription, error)
	// Files reads the workspace: ReadFile and ListFiles.
	Files
}

// SubmitRequest is a patch to store.
type SubmitRequest struct {
	// Body is the patch block as the sender sent it (JSON): its SHA-256
	// recognises a resend, and it is what the worker parses again.
	Body []byte
}

// SubmitResult is the answer to a Submit.
type SubmitResult struct {
	PatchID string `json:"patch_id"`
	State   string `json:"state"`
	// Duplicate says the same id and body were received before: nothing
	// new was stored, State is the stored patch's.
	Duplicate bool `json:"duplicate,omitempty"`
	// Attempt is set from the second attempt at the id on: a patch that
	// failed, sent again with another body (PatchView.Attempt).
	Attempt int `json:"attempt,omitempty"`
	// Wait is how long the block asks to wait for the outcome
	// ("wait_seconds"), 0 if it does not: a door that can wait (Wait) and
	// was not told otherwise by its own request waits this long.
	Wait time.Duration `json:"-"`
}

// PreviewRequest is a patch to preview.
type PreviewRequest struct {
	Body []byte // the patch block, as for SubmitRequest
}

// PreviewResult is what a patch would change.
type PreviewResult struct {
	PatchID string   `json:"patch_id"`
	Files   []string `json:"files"` // the paths it would write, create or delete
	Diff    string   `json:"diff"`  // unified diff
}

// ListOptions selects a page of patches.
type ListOptions struct {
	// Cursor is the NextCursor of the previous page; "" for the first.
	Cursor string
	// Limit is the page size, from 1 to MaxListLimit; 0 means
	// DefaultListLimit.
	Limit int
	// State keeps only patches in this state (one of States); "" all.
	State string
	// MaxChars, when above 0, bounds the page: each patch's texts are cut
	// as FitListed cuts them, and the page ends early, with a NextCursor,
	// before the patch that would take its patches' JSON past MaxChars
	// (it holds one patch at least).
	MaxChars int
}

// The page sizes of List. They are the store's (a test in patchsvc holds
// them equal).
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// The waits for a patch's outcome a sender may ask for (POST
// /webhook?wait=, "wait_seconds", patchd send --wait): at most MaxWait,
// which leaves a GPT action, allowed 45 s per call, time for the tunnel;
// DefaultWait when a sender asks to wait without saying how long. The
// HTTP server lets a waiting request's connection live that long.
const (
	MaxWait     = 40 * time.Second
	DefaultWait = 30 * time.Second
)

// MaxRevertWait is how long a revert should wait for a busy worker at
// most: below the HTTP server's 30 s write timeout, so that the answer
// still reaches the client.
const MaxRevertWait = 20 * time.Second

// Subscription is a stream of events. Events is closed when it ends; Err
// then says why: nil or ctx's error when the subscriber's context ended,
// an *Error otherwise: code subscriber_slow (it fell thousands of events
// behind; subscribe again after the last event read, nothing is missed),
// events_lost (Kind gone) or store_closed.
type Subscription interface {
	Events() <-chan Event
	Err() error
}

// EventFilter is a Service that can deliver only some kinds of event.
// SubscribeOnly is Subscribe for the events named (patch.applied, ...),
// in order, with gaps where the others were; those cost the subscription
// nothing (no goroutine is woken for them). A subscriber that follows
// outcomes should use it where the Service has it (check with a type
// assertion): otherwise every patch received is handed to it too.
type EventFilter interface {
	SubscribeOnly(ctx context.Context, afterEventID uint64, events ...string) (Subscription, error)
}
