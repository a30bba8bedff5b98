package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/workspace"
)

// publishTimeout bounds how long a Submit waits for JetStream's PubAck
// once it publishes (the sender deserves the answer even if its ctx
// ends: the message may be stored anyway).
const publishTimeout = 10 * time.Second

// stateDirName is the daemon's state directory inside a workspace by
// default; a patch to it is refused at the gateway as the daemon would.
const stateDirName = ".patchd"

// Submit implements api.Service: it checks the block as the daemon would,
// publishes it to its workspace's work subject and answers queued once
// JetStream has stored it. As the daemon, it answers a resend of the same
// id and body Duplicate with the patch's state, and refuses the same id
// with another body (id_conflict) unless the patch failed: then it is a
// new attempt. It knows the body an id was queued with by its SHA-256,
// kept under jetq.BodyKey (created before the patch is published, so that
// of two bodies sent at once under one id only one is queued).
func (s *Service) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResult, error) {
	blk, ws, err := s.intake(ctx, req.Body)
	if err != nil {
		return api.SubmitResult{}, err
	}
	now := time.Now().UTC()
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	sum := sha256.Sum256(req.Body)
	hash := hex.EncodeToString(sum[:])
	bodyKey := jetq.BodyKey(ws, blk.ID)
	attempt := 0
	claimed, err := s.patches.Create(pctx, bodyKey, []byte(hash))
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrKeyExists):
		res, done, err := s.resend(pctx, ws, blk, hash)
		if done || err != nil {
			return res, err
		}
		attempt = res.Attempt
	default:
		return api.SubmitResult{}, unavailable(err, fmt.Sprintf("queue patch %q of workspace %s", blk.ID, ws))
	}
	msg := jetq.NewWorkMsg(jetq.Work{Workspace: ws, ID: blk.ID, Received: now, Body: req.Body})
	ack, err := s.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(jetq.StreamWork))
	if err != nil {
		if claimed > 0 {
			// Not queued: the id is free again for any body.
			s.patches.Delete(context.WithoutCancel(pctx), bodyKey, jetstream.LastRevision(claimed))
		}
		return api.SubmitResult{}, unavailable(err, fmt.Sprintf("queue patch %q of workspace %s", blk.ID, ws))
	}
	res := api.SubmitResult{PatchID: blk.ID, State: api.StateQueued, Duplicate: ack.Duplicate, Attempt: attempt, Wait: blk.Wait}
	key := jetq.PatchKey(ws, blk.ID)
	if ack.Duplicate {
		if e, err := s.patches.Get(pctx, key); err == nil {
			if v, err := jetq.DecodeView(e.Value()); err == nil {
				res.State, res.Attempt = v.State, v.Attempt
			}
		}
		return res, nil
	}
	view := api.PatchView{ID: blk.ID, Workspace: ws, State: api.StateQueued, Role: blk.Role,
		TargetFile: blk.TargetFile, Description: blk.Description, ReceivedAt: now}
	b, err := jetq.EncodeView(view)
	if err == nil {
		// Create, never Put: the runner's view, newer, must win.
		_, err = s.patches.Create(pctx, key, b)
	}
	switch {
	case err == nil, errors.Is(err, jetstream.ErrKeyExists):
	default:
		// The patch is queued; its runner puts its view.
		s.log.Warn("gateway: record the queued patch's view", "workspace", ws, "id", blk.ID, "err", err)
	}
	s.publishSubmitted(pctx, ws, blk.ID, attempt, now, msg.Header.Get(jetq.HeaderMsgID))
	return res, nil
}

// publishSubmitted publishes the event of a patch just queued, as the
// daemon's store emits it (patch.submitted; patch.resubmitted for a new
// attempt), so that the patch shows at once to whoever follows the
// events, before a runner takes it (the runner does not forward its own
// event of it). Its Nats-Msg-Id is derived from the work message's: a
// publish repeated within the dedup window is one event. A failure is
// logged: the patch is queued all the same.
func (s *Service) publishSubmitted(ctx context.Context, ws, id string, attempt int, at time.Time, msgID string) {
	e := api.Event{Time: at, Event: "patch.submitted", ID: id, State: api.StateQueued, Workspace: ws}
	if attempt > 0 {
		e.Event = "patch.resubmitted"
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	m := nats.NewMsg(jetq.EventsSubject(ws))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, "submitted:"+msgID+":"+strconv.Itoa(attempt))
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(jetq.StreamEvents)); err != nil {
		s.log.Warn("gateway: publish the queued patch's event", "workspace", ws, "id", id, "err", err)
	}
}

// resend decides about an id queued before: the same body is a
// Duplicate (answered here when the patch's view exists: nothing to
// queue); another body is a new attempt if the patch failed (the body's
// hash replaced, then queued), else a conflict naming its state. done
// says the answer is res (or err), not a patch to queue.
func (s *Service) resend(ctx context.Context, ws string, blk *patch.Block, hash string) (res api.SubmitResult, done bool, err error) {
	bodyKey := jetq.BodyKey(ws, blk.ID)
	e, err := s.patches.Get(ctx, bodyKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Freed since (a publish that failed): claim it again.
		if _, err := s.patches.Create(ctx, bodyKey, []byte(hash)); err == nil {
			return res, false, nil
		}
		return res, true, s.conflict(ctx, ws, blk.ID, "queued")
	}
	if err != nil {
		return res, true, unavailable(err, fmt.Sprintf("queue patch %q of workspace %s", blk.ID, ws))
	}
	var v api.PatchView
	ve, err := s.patches.Get(ctx, jetq.PatchKey(ws, blk.ID))
	ok := err == nil
	switch {
	case ok:
		if v, err = jetq.DecodeView(ve.Value()); err != nil {
			ok = false
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return res, true, unavailable(err, fmt.Sprintf("queue patch %q of workspace %s", blk.ID, ws))
	}
	if string(e.Value()) == hash {
		if !ok {
			return res, false, nil // its view is not there yet: the dedup window answers
		}
		return api.SubmitResult{PatchID: blk.ID, State: v.State, Duplicate: true, Attempt: v.Attempt, Wait: blk.Wait}, true, nil
	}
	if !ok || v.State != api.StateFailed {
		state := api.StateQueued
		if ok {
			state = v.State
		}
		return res, true, s.conflict(ctx, ws, blk.ID, state)
	}
	if _, err := s.patches.Update(ctx, bodyKey, []byte(hash), e.Revision()); err != nil {
		// Another attempt was queued in between.
		return res, true, s.conflict(ctx, ws, blk.ID, api.StateQueued)
	}
	// The view says queued again (unless its runner changed it since),
	// so that the old body sent now is a conflict, as at the daemon.
	v.State, v.Error, v.Code, v.Attempt = api.StateQueued, "", "", max(v.Attempt, 1)+1
	v.StartedAt, v.FinishedAt, v.DurationMS, v.Diff, v.Files = time.Time{}, time.Time{}, 0, "", nil
	v.ReceivedAt = time.Now().UTC()
	if b, err := jetq.EncodeView(v); err == nil {
		s.patches.Update(ctx, jetq.PatchKey(ws, blk.ID), b, ve.Revision())
	}
	return api.SubmitResult{Attempt: v.Attempt}, false, nil
}

// conflict is the refusal of an id used before with another body, in the
// daemon's words.
func (s *Service) conflict(_ context.Context, ws, id, state string) *api.Error {
	return &api.Error{Kind: api.KindConflict, Code: api.CodeIDConflict, Field: "id",
		Message: fmt.Sprintf("patch id %q was already used for a different body in workspace %s (state %s); use a new id (only a patch that failed takes another body under its id)", id, ws, state)}
}

// intake parses and checks a block and finds its workspace: the body's
// "workspace" field, or the one s is bound to (both: they must agree).
func (s *Service) intake(ctx context.Context, body []byte) (*patch.Block, string, error) {
	blk, err := patch.ParseWith(body, s.parse)
	if err != nil {
		return nil, "", refusal(api.KindInvalid, api.CodeFieldInvalid, "", err)
	}
	ws, err := s.workspaceOf(body)
	if err != nil {
		return nil, "", err
	}
	for _, target := range blk.Targets() {
		field := "target_file"
		if target != blk.TargetFile {
			field = "path"
		}
		if err := checkPath(target); err != nil {
			return nil, "", &api.Error{Kind: api.KindInvalid, Code: codeOr(err, api.CodePathInvalid), Field: field,
				Message: fmt.Sprintf("Invalid field: %s: %v", field, err), Err: err}
		}
	}
	if err := s.exists(ctx, ws); err != nil {
		return nil, "", err
	}
	return blk, ws, nil
}

// workspaceOf reads a body's "workspace" member (exactly that name) and
// reconciles it with the workspace s is bound to.
func (s *Service) workspaceOf(body []byte) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		// patch's parser accepted it: not reached.
		return "", refusal(api.KindInvalid, api.CodeMalformedJSON, "", err)
	}
	raw, ok := fields["workspace"]
	var named string
	if ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &named); err != nil {
			return "", api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace", "Invalid field: workspace: must be a string")
		}
	}
	switch {
	case named == "" && s.ws == "":
		return "", api.Errorf(api.KindInvalid, api.CodeFieldMissing, "workspace",
			"Missing required field: workspace (the name of the workspace the patch is for; or post to /ws/<name>/webhook)")
	case named == "":
		return s.ws, nil
	case s.ws != "" && named != s.ws:
		return "", api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace",
			"Invalid field: workspace: %q, and the patch was sent to workspace %s's address", named, s.ws)
	}
	if err := jetq.CheckWorkspace(named); err != nil {
		return "", err
	}
	return named, nil
}

// checkPath checks a patch's path lexically, as the daemon's workspace
// does before touching a file: a clean relative path, nothing under .git
// and not the daemon's state directory by its default name. What only
// the workspace's files can tell (symbolic links, a state directory
// elsewhere) the runner's daemon refuses when it takes the patch.
func checkPath(p string) error {
	clean, err := workspace.CleanPath(p)
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(clean, "/")
	if strings.EqualFold(first, stateDirName) {
		return &pathError{path: p}
	}
	return nil
}

// pathError refuses the state directory's default name.
type pathError struct{ path string }

func (e *pathError) Error() string {
	return fmt.Sprintf("path %q: refers to patchd's state directory %q", e.path, stateDirName)
}

// Code is the refusal's code.
func (e *pathError) Code() string { return api.CodePathProtected }

// codeOr is err's own code, or def.
func codeOr(err error, def string) string {
	if c := api.CodeOf(err); c != "" {
		return c
	}
	return def
}

// refusal is err as an *api.Error of kind, with err's own code and field
// where it names them (patch's errors do), else code and field.
func refusal(kind api.Kind, code, field string, err error) *api.Error {
	if e, ok := errors.AsType[*api.Error](err); ok {
		return e
	}
	if f := api.FieldOf(err); f != "" {
		field = f
	}
	return &api.Error{Kind: kind, Code: codeOr(err, code), Field: field, Message: err.Error(), Err: err}
}
