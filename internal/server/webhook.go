package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/auth"
)

// authorized checks the bearer token, or for senders that sign instead, the
// body signature. When both are sent both must hold. body is nil while the
// body has not been read yet; then only the bearer is checked.
func (s *Server) authorized(r *http.Request, body []byte) (ok, needBody bool) {
	tok := s.Token()
	if tok == "" {
		return true, false
	}
	bearer := r.Header.Get("Authorization")
	sig := r.Header.Get(auth.SignatureHeader)
	if bearer != "" && !auth.BearerOK(bearer, tok) {
		return false, false
	}
	if sig == "" {
		return bearer != "", false
	}
	if body == nil {
		return false, true
	}
	return auth.SignatureOK(sig, body, tok), false
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="patchd"`)
	s.refusef(w, r, api.KindUnauthorized, api.CodeUnauthorized, "", "missing or invalid credentials: send 'Authorization: Bearer <token>' (see 'patchd token') or a valid %s", auth.SignatureHeader)
}

// PreviewAnswer is the body of a successful POST /patches/preview.
type PreviewAnswer struct {
	Status string `json:"status"`
	Result struct {
		Success bool `json:"success"`
		api.PreviewResult
		// Notes say what a long preview left out (api.FitPreview).
		Notes []string `json:"notes,omitempty"`
	} `json:"result"`
}

// handlePreview answers what a patch would change, or why it would fail,
// without storing or writing anything.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	body := s.readBody(w, r, nil)
	if body == nil {
		return
	}
	res, err := s.opts.Service.Preview(r.Context(), api.PreviewRequest{Body: body})
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	var a PreviewAnswer
	a.Status = "preview"
	a.Result.Notes = api.FitPreview(&res)
	a.Result.Success, a.Result.PreviewResult = true, res
	s.writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	var counted bool
	defer func() {
		if counted {
			s.act.leave()
		}
	}()
	body := s.readBody(w, r, &counted)
	if body == nil {
		return
	}
	wait, err := waitParam(r)
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	res, err := s.opts.Service.Submit(r.Context(), api.SubmitRequest{Body: body})
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	if wait == 0 {
		wait = res.Wait // the block's "wait_seconds"
	}
	if wait > 0 {
		w.Header().Set("Location", "/patches/"+res.PatchID)
		// Waiting is not intake: the worker, which yields to requests
		// being validated and stored, must not wait for this one.
		if counted {
			counted = false
			s.act.leave()
		}
		s.answerOutcome(w, r, res, wait)
		return
	}
	code := http.StatusAccepted
	if res.Duplicate {
		code = http.StatusOK
	}
	w.Header().Set("Location", "/patches/"+res.PatchID)
	s.writeJSON(w, code, answer{Status: "accepted", Result: result{
		Success: true, PatchID: res.PatchID, State: res.State, Duplicate: res.Duplicate, Attempt: res.Attempt,
	}})
}

// readBody authenticates, limits and reads a patch block's body. On any
// refusal it has answered already and returns nil. With counted non-nil,
// the request joins the webhook activity once its body is read, and
// *counted says so; the caller leaves it when done.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, counted *bool) []byte {
	ok, needBody := s.authorized(r, nil)
	if !ok && !needBody {
		s.unauthorized(w, r)
		return nil
	}
	if !s.limiter.allow() {
		s.refusef(w, r, api.KindRateLimited, api.CodeRateLimited, "", "too many requests: more than %g per second; retry after 1s", s.opts.RateLimit)
		return nil
	}
	if !s.jsonBody(w, r) {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.refusef(w, r, api.KindTooLarge, api.CodeBodyTooLarge, "", "body too large: the limit is %d bytes (--max-body)", tooBig.Limit)
			return nil
		}
		s.refusef(w, r, api.KindInvalid, api.CodeBodyUnreadable, "", "reading the body: %v", err)
		return nil
	}
	if body == nil {
		body = []byte{}
	}
	if counted != nil {
		s.act.enter()
		*counted = true
	}
	if needBody {
		if ok, _ := s.authorized(r, body); !ok {
			s.unauthorized(w, r)
			return nil
		}
	}
	return body
}

// limiter is a token bucket shared by all webhook senders. A nil limiter
// allows everything.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (l *limiter) allow() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// pageSize parses ?limit= for listings: 0 when absent (the service's
// default).
func pageSize(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > api.MaxListLimit {
		return 0, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "limit", "limit must be a number from 1 to %d, not %q", api.MaxListLimit, v)
	}
	return n, nil
}
