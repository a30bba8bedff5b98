// Package patchsvc implements api.Service over the store, the worker and
// the workspace: the patch use cases every door (HTTP, CLI, MCP, the
// dashboard, the NATS runner) shares. Nothing above it reaches into the
// store or the worker for them.
//
// Its errors are *api.Error, mapped once (ErrorOf): the typed errors and
// sentinels of the packages below get a Kind, a code and a field, and a
// message with no absolute path of this machine in it.
package patchsvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// Options configures a Service.
type Options struct {
	// Store keeps the patches; required.
	Store *store.Store
	// Workspace confines a block's paths at intake; nil checks none (a
	// service that only reads and drops, such as the CLI's while no
	// daemon runs).
	Workspace *workspace.Workspace
	// Worker previews and reverts; nil refuses both as unavailable.
	Worker *worker.Worker
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxEdits bounds the edits of a block (0: patch.MaxEdits), and
	// MaxEditsSetting names the setting that raises it, for the message.
	MaxEdits        int
	MaxEditsSetting string
	// SummariesDir is where the worker writes summaries; Prune deletes
	// those of expired patches there. "" deletes none.
	SummariesDir string
	// Private lists absolute paths of this machine that no answer may
	// show (the state directory; the workspace's is added): each is
	// replaced by a name such as "<state dir>".
	Private []Private
}

// Private is an absolute path an answer shows by a name instead.
type Private struct {
	Path string // absolute
	Name string // such as "<workspace>"
}

// Service implements api.Service.
type Service struct {
	st      *store.Store
	ws      *workspace.Workspace
	wk      *worker.Worker
	log     *slog.Logger
	parse   patch.ParseOptions
	private []Private
	sumDir  string
	// recent counts the outcomes of the last hour and day (Status).
	recent recent
	// notify reports the notification receivers (Status.Notify); set
	// once the daemon has opened their outbox (SetNotify).
	notify atomic.Pointer[func() []api.NotifyStatus]
	// nats reports the runner's link to NATS (Status.NATS); set once
	// the daemon has started the runner (SetNATS).
	nats atomic.Pointer[func() *api.NATSStatus]
}

// SetNATS makes Status report the runner's link to NATS as f tells it
// (--queue); nil reports none.
func (s *Service) SetNATS(f func() *api.NATSStatus) {
	if f == nil {
		s.nats.Store(nil)
		return
	}
	s.nats.Store(&f)
}

// SetNotify makes Status report the notification receivers as f tells
// them (the daemon's outbox, built over this service); nil reports none.
func (s *Service) SetNotify(f func() []api.NotifyStatus) {
	if f == nil {
		s.notify.Store(nil)
		return
	}
	s.notify.Store(&f)
}

var _ api.Service = (*Service)(nil)

// submitTimeout bounds how long a submission waits for the store once the
// body is handed to it.
const submitTimeout = 30 * time.Second

// New returns a Service.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: opts.Store, ws: opts.Workspace, wk: opts.Worker, log: opts.Logger, sumDir: opts.SummariesDir,
		parse: patch.ParseOptions{MaxEdits: opts.MaxEdits, MaxEditsSetting: opts.MaxEditsSetting}}
	if s.ws != nil {
		s.private = append(s.private, Private{Path: s.ws.Dir(), Name: "<workspace>"})
	}
	s.private = append(s.private, opts.Private...)
	// Also as the file system resolves them: git names the real path.
	for _, p := range s.private {
		if real, err := filepath.EvalSymlinks(p.Path); err == nil && real != p.Path {
			s.private = append(s.private, Private{Path: real, Name: p.Name})
		}
	}
	s.private = slices.DeleteFunc(s.private, func(p Private) bool {
		return !filepath.IsAbs(p.Path) || filepath.Dir(p.Path) == p.Path
	})
	// The longest first: a state dir inside the workspace is named as such.
	slices.SortFunc(s.private, func(a, b Private) int { return len(b.Path) - len(a.Path) })
	return s
}

// intake parses and confines a block: every refusal is invalid (400), with
// the message senders of the seed service match.
func (s *Service) intake(body []byte) (*patch.Block, error) {
	blk, err := patch.ParseWith(body, s.parse)
	if err != nil {
		// Not hidden: these messages quote only what the sender sent.
		return nil, refusal{kind: api.KindInvalid, code: api.CodeFieldInvalid}.of(err)
	}
	if s.ws == nil {
		return blk, nil
	}
	for _, target := range blk.Targets() {
		if _, err := s.ws.Check(target); err != nil {
			field := "target_file"
			if target != blk.TargetFile {
				field = "path"
			}
			return nil, refusal{kind: api.KindInvalid, code: api.CodePathInvalid, field: field,
				msg: fmt.Sprintf("Invalid field: %s: %v", field, err)}.of(err)
		}
	}
	return blk, nil
}

// Submit implements api.Service.
func (s *Service) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResult, error) {
	blk, err := s.intake(req.Body)
	if err != nil {
		return api.SubmitResult{}, err
	}
	sum := sha256.Sum256(req.Body)
	rec := store.Patch{
		ID:          blk.ID,
		Hash:        hex.EncodeToString(sum[:]),
		Role:        blk.Role,
		Target:      blk.TargetFile,
		Description: blk.Description,
	}
	// Not the caller's context: once the record is handed to the store
	// it may land anyway, and the sender deserves the answer.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	defer cancel()
	got, created, err := s.st.Submit(sctx, rec, req.Body)
	if err != nil {
		r := refusal{}
		switch kind, _, _ := classify(err); kind {
		case api.KindConflict:
			r.msg = fmt.Sprintf("patch id %q was already used for a different body (state %s); use a new id (only a patch that failed takes another body under its id)", blk.ID, s.stateOf(blk.ID))
		case api.KindUnavailable:
		case api.KindGone:
			if e, ok := errors.AsType[*store.ExpiredError](err); ok {
				r.msg = e.Error() + "; use a new id"
			}
		default:
			s.log.Error("submit patch", "id", blk.ID, "err", err)
			r.msg = fmt.Sprintf("storing patch %q: %v", blk.ID, err)
		}
		return api.SubmitResult{}, s.refuse(r, err)
	}
	if created {
		// Debug: every acceptance is in events.jsonl already, and at
		// thousands per second an info line costs 5% of the CPU.
		s.log.Debug("patch accepted", "id", got.ID, "seq", got.Seq, "role", got.Role, "target", got.Target)
	}
	return api.SubmitResult{PatchID: got.ID, State: string(got.State), Duplicate: !created, Attempt: attemptOf(got), Wait: blk.Wait}, nil
}

func (s *Service) stateOf(id string) string {
	if p, ok := s.st.Get(id); ok {
		return string(p.State)
	}
	return "unknown"
}

// Preview implements api.Service.
func (s *Service) Preview(ctx context.Context, req api.PreviewRequest) (api.PreviewResult, error) {
	blk, err := s.intake(req.Body)
	if err != nil {
		return api.PreviewResult{}, err
	}
	if s.wk == nil {
		return api.PreviewResult{}, api.Errorf(api.KindUnavailable, api.CodeWorkerBusy, "", "no worker to preview with")
	}
	diff, files, err := s.wk.Preview(ctx, blk)
	if err != nil {
		// Whatever stops it, it is why the patch would fail.
		return api.PreviewResult{}, s.refuse(refusal{kind: api.KindUnprocessable, code: api.CodePatchRefused}, err)
	}
	return api.PreviewResult{PatchID: blk.ID, Files: files, Diff: diff}, nil
}

// Get implements api.Service.
func (s *Service) Get(_ context.Context, id string) (api.PatchView, error) {
	p, ok := s.st.Get(id)
	if !ok {
		return api.PatchView{}, s.notFound(id)
	}
	return s.view(p, true), nil
}

// notFound is the refusal of an id the store does not hold: gone (410,
// code expired, saying when) for a patch retention removed, else not found.
func (s *Service) notFound(id string) *api.Error {
	if at, ok := s.st.Expired(id); ok {
		err := &store.ExpiredError{ID: id, At: at}
		return &api.Error{Kind: api.KindGone, Code: api.CodeExpired, Field: "id", Message: err.Error(), Err: err}
	}
	return &api.Error{Kind: api.KindNotFound, Code: api.CodePatchNotFound, Field: "id",
		Message: fmt.Sprintf("no patch with id %q", id), Err: store.ErrNotFound}
}

// List implements api.Service.
func (s *Service) List(_ context.Context, o api.ListOptions) (api.PatchList, error) {
	if o.Limit < 0 || o.Limit > api.MaxListLimit {
		return api.PatchList{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "limit",
			"limit must be a number from 1 to %d, not %q", api.MaxListLimit, fmt.Sprint(o.Limit))
	}
	state := store.State(o.State)
	if state != "" && !state.Valid() {
		return api.PatchList{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "state",
			"state must be one of %s, not %q", strings.Join(api.States(), ", "), o.State)
	}
	ps, next := s.st.List(o.Cursor, o.Limit, state)
	out := api.PatchList{Patches: make([]api.PatchView, 0, len(ps)), NextCursor: next}
	chars := 0
	for i, p := range ps {
		v := s.view(p, false)
		if o.MaxChars > 0 {
			api.FitListed(&v)
			b, err := json.Marshal(v)
			if err != nil {
				return api.PatchList{}, api.Errorf(api.KindInternal, api.CodeInternal, "", "list: %v", err)
			}
			if chars += len(b) + 1; chars > o.MaxChars && i > 0 {
				out.NextCursor = store.CursorAfter(ps[i-1])
				break
			}
		}
		out.Patches = append(out.Patches, v)
	}
	return out, nil
}

// Revert implements api.Service.
func (s *Service) Revert(ctx context.Context, id string) (api.PatchView, error) {
	if _, ok := s.st.Get(id); !ok {
		return api.PatchView{}, s.notFound(id)
	}
	if s.wk == nil {
		return api.PatchView{}, api.Errorf(api.KindUnavailable, api.CodeWorkerBusy, "", "cannot revert %q now: no worker runs", id)
	}
	p, err := s.wk.Revert(ctx, id)
	if err != nil {
		r := refusal{}
		switch kind, _, _ := classify(err); kind {
		case api.KindUnavailable:
			if code := codeOf(err); code == api.CodeWorkerBusy {
				r.msg = fmt.Sprintf("cannot revert %q now: %v", id, err)
			}
		case api.KindConflict:
			r.msg = fmt.Sprintf("cannot revert %q: %v", id, err)
		default:
			r.kind = api.KindInternal
			r.msg = fmt.Sprintf("revert %q: %v", id, err)
		}
		return api.PatchView{}, s.refuse(r, err)
	}
	return s.view(p, false), nil
}

// Drop implements api.Service.
func (s *Service) Drop(ctx context.Context, id string) (api.PatchView, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	defer cancel()
	p, err := s.st.Drop(dctx, id)
	if err != nil {
		r := refusal{}
		switch kind, code, _ := classify(err); {
		case kind == api.KindNotFound:
			return api.PatchView{}, s.notFound(id)
		case code == api.CodeNotQueued:
			cur, _ := s.st.Get(id)
			r.msg = fmt.Sprintf("cannot drop %q: only a queued patch can be dropped, and it is %s", id, cur.State)
		case kind == api.KindUnavailable:
		default:
			r.kind = api.KindInternal
			r.msg = fmt.Sprintf("drop %q: %v", id, err)
		}
		return api.PatchView{}, s.refuse(r, err)
	}
	s.log.Info("patch dropped", "id", id)
	return s.view(p, false), nil
}

// Status implements api.Service.
func (s *Service) Status(context.Context) (api.Status, error) {
	s.recent.start(s)
	st := s.st.Stats()
	var notify []api.NotifyStatus
	if f := s.notify.Load(); f != nil {
		notify = (*f)()
	}
	var nats *api.NATSStatus
	if f := s.nats.Load(); f != nil {
		nats = (*f)()
	}
	return api.Status{
		NATS:   nats,
		Notify: notify,
		Recent: s.recent.counts(time.Now()),
		Queue: api.QueueStats{
			Queued: st.Queued, Applying: st.Applying, Applied: st.Applied, Failed: st.Failed,
			Reverted: st.Reverted, Total: st.Total, JournalBytes: st.JournalBytes,
			Batches: st.Batches, Records: st.Records,
		},
		LastEventID: s.st.LastEventID(),
	}, nil
}

var _ api.Bodies = (*Service)(nil)

// Body implements api.Bodies: the body the patch was last sent with.
func (s *Service) Body(_ context.Context, id string) ([]byte, error) {
	b, err := s.st.Body(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.notFound(id)
	}
	if err != nil {
		return nil, api.Errorf(api.KindInternal, api.CodeInternal, "", "read the body of %q: %s", id, s.hide(err.Error()))
	}
	return b, nil
}

// codeOf is the code ErrorOf gives err.
func codeOf(err error) string {
	if c := api.CodeOf(err); c != "" {
		return c
	}
	_, code, _ := classify(err)
	return code
}

// refuse maps err as r says, with this machine's paths hidden.
func (s *Service) refuse(r refusal, err error) *api.Error {
	e := r.of(err)
	if msg := s.hide(e.Message); msg != e.Message {
		c := *e
		c.Message = msg
		return &c
	}
	return e
}

// hide replaces the private paths in msg by their names.
func (s *Service) hide(msg string) string {
	for _, p := range s.private {
		msg = strings.ReplaceAll(msg, p.Path, p.Name)
	}
	return msg
}

// attemptOf is the number of p's attempt at its id from the second on,
// 0 for the first.
func attemptOf(p store.Patch) int {
	if n := len(p.Attempts); n > 0 {
		return p.Attempts[n-1].Number + 1
	}
	return 0
}

// view converts a stored patch; withDiff includes the diff and files.
func (s *Service) view(p store.Patch, withDiff bool) api.PatchView {
	v := api.PatchView{
		ID: p.ID, Seq: p.Seq, State: string(p.State), Role: p.Role, TargetFile: p.Target,
		Description: p.Description, Error: s.hide(p.Error), Code: p.Code, Notes: p.Notes, Commit: p.Commit,
		ReceivedAt: p.ReceivedAt, StartedAt: p.StartedAt, FinishedAt: p.FinishedAt, RevertedAt: p.RevertedAt,
	}
	if !p.StartedAt.IsZero() && !p.FinishedAt.IsZero() {
		v.DurationMS = float64(p.FinishedAt.Sub(p.StartedAt).Microseconds()) / 1000
	}
	v.Attempt = attemptOf(p)
	for _, a := range p.Attempts {
		v.Attempts = append(v.Attempts, api.Attempt{Attempt: a.Number, Hash: a.Hash, Error: s.hide(a.Error),
			Code: a.Code, ReceivedAt: a.ReceivedAt, FinishedAt: a.FinishedAt})
	}
	if withDiff {
		v.Diff = p.Diff
		if p.Files != nil {
			v.Files = make([]api.FileChange, len(p.Files))
			for i, f := range p.Files {
				v.Files[i] = api.FileChange{Path: f.Path, OldHash: f.OldHash, NewHash: f.NewHash,
					OldMode: f.OldMode, Existed: f.Existed, Deleted: f.Deleted}
			}
		}
	}
	return v
}
