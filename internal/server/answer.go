package server

import (
	"net/http"

	"github.com/patchd/patchd/internal/api"
)

// result is the seed-compatible answer body: senders written for the Flask
// service read result.success and result.error; programs read result.code
// and result.field.
type result struct {
	Success   bool   `json:"success"`
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
	Field     string `json:"field,omitempty"`
	PatchID   string `json:"patch_id,omitempty"`
	State     string `json:"state,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Attempt   int    `json:"attempt,omitempty"` // from the second attempt at an id on
	// A webhook request that waited for the outcome (answerOutcome):
	Files []string `json:"files,omitempty"` // the paths an applied patch wrote, created or deleted
	Diff  string   `json:"diff,omitempty"`
	Notes []string `json:"notes,omitempty"` // how edits were fitted
	Note  string   `json:"note,omitempty"`  // what to do next, when not finished
}

type answer struct {
	Status string `json:"status"`
	Result result `json:"result"`
}

// retryAfter is the Retry-After of a refusal worth retrying, in seconds
// ("" for none): a rate limit passes within a second; a busy worker or a
// store that cannot write are given a few.
func retryAfter(k api.Kind) string {
	switch k {
	case api.KindRateLimited:
		return "1"
	case api.KindUnavailable:
		return "5"
	}
	return ""
}

// refuse answers err, mapped to an *api.Error (api.ErrorOf), in the seed's
// shape with its code and field, the status its Kind says, and Retry-After
// where retrying helps. Refusals a client's mistake or an attack causes
// are logged (rate-limited); the service logs its own failures.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	e := api.ErrorOf(err)
	code := e.Kind.HTTPStatus()
	if loggedStatus(code) {
		s.refusals.refused(code, s.clientAddr(r), r.Method, r.URL.Path, e.Message)
	}
	if ra := retryAfter(e.Kind); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	s.writeJSON(w, code, answer{Status: "error", Result: result{Error: api.FitMessage(e.Message), Code: e.Code, Field: e.Field}})
}

// refusef answers a refusal the server itself makes (credentials, headers,
// limits, query parameters).
func (s *Server) refusef(w http.ResponseWriter, r *http.Request, kind api.Kind, code, field, format string, args ...any) {
	s.refuse(w, r, api.Errorf(kind, code, field, format, args...))
}
