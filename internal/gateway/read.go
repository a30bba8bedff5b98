package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// Get implements api.Service: the patch's view from the PATCHD_PATCHES
// bucket (its diff the first api.DiffPageChars of it: the runners keep
// no more there). Unbound, the id is looked up in every workspace; a
// patch of several is a conflict naming them.
func (s *Service) Get(ctx context.Context, id string) (api.PatchView, error) {
	v, err := s.find(ctx, id)
	return v, err
}

// find looks id up in s's workspace, or in every one.
func (s *Service) find(ctx context.Context, id string) (api.PatchView, error) {
	if id == "" || strings.ContainsAny(id, " *>\x00") {
		return api.PatchView{}, notFound(id)
	}
	wss := []string{s.ws}
	if s.ws == "" {
		var err error
		if wss, err = s.Workspaces(ctx); err != nil {
			return api.PatchView{}, err
		}
	}
	var hits []api.PatchView
	for _, ws := range wss {
		v, ok, err := s.view(ctx, ws, id)
		if err != nil {
			return api.PatchView{}, err
		}
		if ok {
			hits = append(hits, v)
		}
	}
	switch len(hits) {
	case 0:
		return api.PatchView{}, notFound(id)
	case 1:
		return hits[0], nil
	}
	names := make([]string, len(hits))
	for i, v := range hits {
		names[i] = v.Workspace
	}
	return api.PatchView{}, &api.Error{Kind: api.KindConflict, Code: CodeWorkspaceAmbiguous, Field: "workspace",
		Message: fmt.Sprintf("patch %q is in several workspaces (%s): ask /ws/<name>/patches/%s", id, strings.Join(names, ", "), id)}
}

// view reads one view from the bucket.
func (s *Service) view(ctx context.Context, ws, id string) (api.PatchView, bool, error) {
	e, err := s.patches.Get(ctx, jetq.PatchKey(ws, id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return api.PatchView{}, false, nil
	case err != nil:
		return api.PatchView{}, false, unavailable(err, "read patch "+id)
	}
	v, err := jetq.DecodeView(e.Value())
	if err != nil {
		s.log.Warn("gateway: a patch view that does not decode", "key", e.Key(), "err", err)
		return api.PatchView{}, false, nil
	}
	v.Workspace = ws
	return v, true, nil
}

func notFound(id string) *api.Error {
	return &api.Error{Kind: api.KindNotFound, Code: api.CodePatchNotFound, Field: "id",
		Message: fmt.Sprintf("no patch with id %q", id)}
}

// listScan bounds how many of the bucket's stream sequences one page
// reads: superseded views leave gaps, and another workspace's views are
// passed over when s is bound. A page that reaches it ends early, with
// a NextCursor.
func listScan(limit int) int { return max(2000, 20*limit) }

// List implements api.Service: the views in the PATCHD_PATCHES bucket,
// the most recently changed first (a view moves up when its runner puts
// a newer one), read backwards along the bucket's stream from the
// cursor, one sequence at a time (its cost grows with the page, not with
// the history). A State filter is applied as the views are read; a page
// ends early (NextCursor set, possibly with fewer patches than the limit,
// even none) once it has read listScan sequences. A view changed while
// a listing pages through may be passed over; none is listed twice.
func (s *Service) List(ctx context.Context, o api.ListOptions) (api.PatchList, error) {
	if o.Limit < 0 || o.Limit > api.MaxListLimit {
		return api.PatchList{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "limit",
			"limit must be a number from 1 to %d, not %q", api.MaxListLimit, fmt.Sprint(o.Limit))
	}
	if o.Limit == 0 {
		o.Limit = api.DefaultListLimit
	}
	if o.State != "" && !validState(o.State) {
		return api.PatchList{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "state",
			"state must be one of %s, not %q", strings.Join(api.States(), ", "), o.State)
	}
	info, err := s.views.Info(ctx)
	if err != nil {
		return api.PatchList{}, unavailable(err, "list patches")
	}
	seq := info.State.LastSeq
	if o.Cursor != "" {
		c, err := strconv.ParseUint(o.Cursor, 10, 64)
		if err != nil || c == 0 {
			return api.PatchList{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "cursor",
				"cursor %q is not one this gateway gave (a next_cursor)", o.Cursor)
		}
		seq = min(seq, c-1)
	}
	prefix := s.viewsSub
	if s.ws != "" {
		prefix += jetq.PatchKeyPrefix(s.ws)
	}
	out := api.PatchList{Patches: []api.PatchView{}}
	chars, scanned := 0, 0
	for ; seq >= max(info.State.FirstSeq, 1) && seq > 0; seq-- {
		if len(out.Patches) == o.Limit || scanned == listScan(o.Limit) {
			break
		}
		scanned++
		m, err := s.views.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // superseded by a newer view of its key
		}
		if err != nil {
			return api.PatchList{}, unavailable(err, "list patches")
		}
		if !strings.HasPrefix(m.Subject, prefix) || m.Header.Get("KV-Operation") != "" {
			continue
		}
		ws, _, err := jetq.ParsePatchKey(strings.TrimPrefix(m.Subject, s.viewsSub))
		if err != nil {
			continue
		}
		v, err := jetq.DecodeView(m.Data)
		if err != nil || (o.State != "" && v.State != o.State) {
			continue
		}
		v.Workspace = ws
		v.Diff, v.DiffSize, v.DiffOffset, v.DiffNext = "", 0, 0, 0
		if o.MaxChars > 0 {
			api.FitListed(&v)
			b, err := json.Marshal(v)
			if err != nil {
				return api.PatchList{}, api.Errorf(api.KindInternal, api.CodeInternal, "", "list: %v", err)
			}
			if chars += len(b) + 1; chars > o.MaxChars && len(out.Patches) > 0 {
				break // seq is this patch's: the next page starts with it
			}
		}
		out.Patches = append(out.Patches, v)
	}
	if seq >= max(info.State.FirstSeq, 1) && seq > 0 {
		out.NextCursor = strconv.FormatUint(seq+1, 10)
	}
	return out, nil
}

func validState(s string) bool {
	for _, st := range api.States() {
		if s == st {
			return true
		}
	}
	return false
}
