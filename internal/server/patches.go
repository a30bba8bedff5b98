package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
)

// PatchView is a patch as the API shows it.
type PatchView struct {
	ID          string             `json:"id"`
	Seq         uint64             `json:"seq"`
	State       string             `json:"state"`
	Role        string             `json:"role"`
	TargetFile  string             `json:"target_file"`
	Description string             `json:"description,omitempty"`
	Error       string             `json:"error,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
	ReceivedAt  time.Time          `json:"received_at"`
	StartedAt   time.Time          `json:"started_at,omitzero"`
	FinishedAt  time.Time          `json:"finished_at,omitzero"`
	RevertedAt  time.Time          `json:"reverted_at,omitzero"`
	DurationMS  float64            `json:"duration_ms,omitempty"`
	Files       []store.FileChange `json:"files,omitempty"`
	Diff        string             `json:"diff,omitempty"`
}

// View converts a stored patch; withDiff includes the diff and files.
func View(p store.Patch, withDiff bool) PatchView {
	v := PatchView{
		ID: p.ID, Seq: p.Seq, State: string(p.State), Role: p.Role, TargetFile: p.Target,
		Description: p.Description, Error: p.Error, Notes: p.Notes,
		ReceivedAt: p.ReceivedAt, StartedAt: p.StartedAt, FinishedAt: p.FinishedAt, RevertedAt: p.RevertedAt,
	}
	if !p.StartedAt.IsZero() && !p.FinishedAt.IsZero() {
		v.DurationMS = float64(p.FinishedAt.Sub(p.StartedAt).Microseconds()) / 1000
	}
	if withDiff {
		v.Diff, v.Files = p.Diff, p.Files
	}
	return v
}

// PatchList is the body of GET /patches.
type PatchList struct {
	Patches    []PatchView `json:"patches"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (s *Server) requireToken(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" || auth.BearerOK(r.Header.Get("Authorization"), s.opts.Token) {
		return true
	}
	s.unauthorized(w, r)
	return false
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	limit, err := pageSize(r)
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	state := store.State(r.URL.Query().Get("state"))
	if state != "" && !state.Valid() {
		s.refuse(w, r, http.StatusBadRequest, "state must be one of %s, not %q", strings.Join(states(), ", "), state)
		return
	}
	ps, next := s.opts.Store.List(r.URL.Query().Get("cursor"), limit, state)
	out := PatchList{Patches: make([]PatchView, 0, len(ps)), NextCursor: next}
	for _, p := range ps {
		out.Patches = append(out.Patches, View(p, false))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	id := r.PathValue("id")
	p, ok := s.opts.Store.Get(id)
	if !ok {
		s.refuse(w, r, http.StatusNotFound, "no patch with id %q", id)
		return
	}
	s.writeJSON(w, http.StatusOK, View(p, true))
}

// maxRevertWait is how long a revert waits for the worker by default and
// at most: below the daemon's 30 s write timeout, so that the answer still
// reaches the client.
const maxRevertWait = 20 * time.Second

func (s *Server) handleRevert(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) || !s.jsonBody(w, r) {
		return
	}
	id := r.PathValue("id")
	if _, ok := s.opts.Store.Get(id); !ok {
		s.refuse(w, r, http.StatusNotFound, "no patch with id %q", id)
		return
	}
	wait := maxRevertWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxRevertWait {
			s.refuse(w, r, http.StatusBadRequest, "wait must be a duration above 0 and at most %s, like 5s, not %q", maxRevertWait, v)
			return
		}
		wait = d
	}
	// The wait for the worker ends with the request (a client that gave
	// up) or after wait; a revert that has started is carried through
	// regardless (the worker detaches from ctx then).
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	p, err := s.opts.Revert(ctx, id)
	switch {
	case errors.Is(err, worker.ErrBusy):
		w.Header().Set("Retry-After", "5")
		s.refuse(w, r, http.StatusServiceUnavailable, "cannot revert %q now: %v", id, err)
		return
	case errors.Is(err, worker.ErrNotApplied), errors.Is(err, worker.ErrChanged):
		s.refuse(w, r, http.StatusConflict, "cannot revert %q: %v", id, err)
		return
	case errors.Is(err, store.ErrUnavailable):
		s.refuse(w, r, http.StatusServiceUnavailable, "%v", err)
		return
	case err != nil:
		s.refuse(w, r, http.StatusInternalServerError, "revert %q: %v", id, err)
		return
	}
	s.writeJSON(w, http.StatusOK, answer{Status: "reverted", Result: result{Success: true, PatchID: p.ID, State: string(p.State)}})
}

// handleDrop is DELETE /patches/{id}: a queued patch fails without being
// applied (patchd patches drop). Any other is refused with 409, naming its
// state. (A web page cannot make a browser send a DELETE to another site
// without a preflight patchd never answers: no JSON type is required.)
func (s *Server) handleDrop(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := s.opts.Store.Drop(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.refuse(w, r, http.StatusNotFound, "no patch with id %q", id)
		return
	case errors.Is(err, store.ErrNotQueued):
		cur, _ := s.opts.Store.Get(id)
		s.refuse(w, r, http.StatusConflict, "cannot drop %q: only a queued patch can be dropped, and it is %s", id, cur.State)
		return
	case errors.Is(err, store.ErrUnavailable):
		s.refuse(w, r, http.StatusServiceUnavailable, "%v", err)
		return
	case err != nil:
		s.refuse(w, r, http.StatusInternalServerError, "drop %q: %v", id, err)
		return
	}
	s.log.Info("patch dropped", "id", id)
	s.writeJSON(w, http.StatusOK, answer{Status: "dropped", Result: result{Success: true, PatchID: p.ID, State: string(p.State)}})
}
