package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/auth"
)

func (s *Server) requireToken(w http.ResponseWriter, r *http.Request) bool {
	if tok := s.Token(); tok == "" || auth.BearerOK(r.Header.Get("Authorization"), tok) {
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
		s.refuse(w, r, err)
		return
	}
	q := r.URL.Query()
	l, err := s.opts.Service.List(r.Context(), api.ListOptions{Cursor: q.Get("cursor"), Limit: limit, State: q.Get("state"), MaxChars: api.ListPageChars})
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	offset := 0
	if v := r.URL.Query().Get("diff_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.refusef(w, r, api.KindInvalid, api.CodeFieldInvalid, "diff_offset", "diff_offset must be a byte offset, a number from 0, not %q", clip(v))
			return
		}
		offset = n
	}
	p, err := s.opts.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	// Every answer stays under api.MaxAnswerChars: a long diff comes in
	// parts, the next fetched with ?diff_offset=.
	if api.FitPatch(&p, offset) {
		if p.DiffNext > 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("diff cut: bytes %d to %d of %d shown; GET /patches/%s?diff_offset=%d for the rest (getPatch with diff_offset)", p.DiffOffset, p.DiffNext, p.DiffSize, url.PathEscape(p.ID), p.DiffNext))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("diff part: bytes %d to %d of %d, the end of the diff", p.DiffOffset, p.DiffSize, p.DiffSize))
		}
	}
	s.writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleRevert(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) || !s.jsonBody(w, r) {
		return
	}
	id := r.PathValue("id")
	wait := api.MaxRevertWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > api.MaxRevertWait {
			// An unknown id is named first, as before the wait is read.
			if _, err := s.opts.Service.Get(r.Context(), id); err != nil {
				s.refuse(w, r, err)
				return
			}
			s.refusef(w, r, api.KindInvalid, api.CodeFieldInvalid, "wait", "wait must be a duration above 0 and at most %s, like 5s, not %q", api.MaxRevertWait, v)
			return
		}
		wait = d
	}
	// The wait for the worker ends with the request (a client that gave
	// up) or after wait; a revert that has started is carried through
	// regardless.
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	p, err := s.opts.Service.Revert(ctx, id)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, answer{Status: "reverted", Result: result{Success: true, PatchID: p.ID, State: p.State}})
}

// handleDrop is DELETE /patches/{id}: a queued patch fails without being
// applied (patchd patches drop). Any other is refused with 409, naming its
// state. (A web page cannot make a browser send a DELETE to another site
// without a preflight patchd never answers: no JSON type is required.)
func (s *Server) handleDrop(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	p, err := s.opts.Service.Drop(r.Context(), r.PathValue("id"))
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, answer{Status: "dropped", Result: result{Success: true, PatchID: p.ID, State: p.State}})
}
