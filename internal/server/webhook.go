package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// result is the seed-compatible answer body: senders written for the Flask
// service read result.success and result.error.
type result struct {
	Success   bool   `json:"success"`
	Error     string `json:"error,omitempty"`
	PatchID   string `json:"patch_id,omitempty"`
	State     string `json:"state,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

type answer struct {
	Status string `json:"status"`
	Result result `json:"result"`
}

// refuse answers an error in the seed's shape with the right status, and
// logs the refusals a client's mistake or an attack causes (rate-limited).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if loggedStatus(code) {
		s.refusals.refused(code, r.RemoteAddr, r.Method, r.URL.Path, msg)
	}
	s.writeJSON(w, code, answer{Status: "error", Result: result{Error: msg}})
}

// authorized checks the bearer token, or for senders that sign instead, the
// body signature. When both are sent both must hold. body is nil while the
// body has not been read yet; then only the bearer is checked.
func (s *Server) authorized(r *http.Request, body []byte) (ok, needBody bool) {
	if s.opts.Token == "" {
		return true, false
	}
	bearer := r.Header.Get("Authorization")
	sig := r.Header.Get(auth.SignatureHeader)
	if bearer != "" && !auth.BearerOK(bearer, s.opts.Token) {
		return false, false
	}
	if sig == "" {
		return bearer != "", false
	}
	if body == nil {
		return false, true
	}
	return auth.SignatureOK(sig, body, s.opts.Token), false
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="patchd"`)
	s.refuse(w, r, http.StatusUnauthorized, "missing or invalid credentials: send 'Authorization: Bearer <token>' (see 'patchd token') or a valid %s", auth.SignatureHeader)
}

// PreviewAnswer is the body of a successful POST /patches/preview.
type PreviewAnswer struct {
	Status string `json:"status"`
	Result struct {
		Success bool     `json:"success"`
		PatchID string   `json:"patch_id"`
		Files   []string `json:"files"`
		Diff    string   `json:"diff"`
	} `json:"result"`
}

// handlePreview answers what a patch would change, or why it would fail,
// without storing or writing anything.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	blk, body := s.readBlock(w, r, nil)
	if blk == nil || body == nil {
		return
	}
	diff, files, err := s.opts.Preview(r.Context(), blk)
	if err != nil {
		s.refuse(w, r, http.StatusUnprocessableEntity, "%s", err.Error())
		return
	}
	var a PreviewAnswer
	a.Status = "preview"
	a.Result.Success, a.Result.PatchID, a.Result.Files, a.Result.Diff = true, blk.ID, files, diff
	s.writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	var counted bool
	defer func() {
		if counted {
			s.act.leave()
		}
	}()
	blk, body := s.readBlock(w, r, &counted)
	if blk == nil || body == nil {
		return
	}
	s.submit(w, r, blk, body)
}

// readBlock authenticates, limits, reads and validates a patch block. On
// any refusal it has answered already and returns nils. With counted
// non-nil, the request joins the webhook activity once its body is read,
// and *counted says so; the caller leaves it when done.
func (s *Server) readBlock(w http.ResponseWriter, r *http.Request, counted *bool) (*patch.Block, []byte) {
	ok, needBody := s.authorized(r, nil)
	if !ok && !needBody {
		s.unauthorized(w, r)
		return nil, nil
	}
	if !s.limiter.allow() {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, r, http.StatusTooManyRequests, "too many requests: more than %g per second; retry after 1s", s.opts.RateLimit)
		return nil, nil
	}
	if !s.jsonBody(w, r) {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, "body too large: the limit is %d bytes (--max-body)", tooBig.Limit)
			return nil, nil
		}
		s.refuse(w, r, http.StatusBadRequest, "reading the body: %v", err)
		return nil, nil
	}
	if counted != nil {
		s.act.enter()
		*counted = true
	}
	if needBody {
		if ok, _ := s.authorized(r, body); !ok {
			s.unauthorized(w, r)
			return nil, nil
		}
	}

	blk, err := patch.ParseWith(body, patch.ParseOptions{MaxEdits: s.opts.MaxEdits, MaxEditsSetting: config.SettingMaxEdits})
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "%s", err.Error())
		return nil, nil
	}
	if s.opts.CheckPath != nil {
		for _, target := range blk.Targets() {
			if _, err := s.opts.CheckPath(target); err != nil {
				field := "target_file"
				if target != blk.TargetFile {
					field = "path"
				}
				s.refuse(w, r, http.StatusBadRequest, "Invalid field: %s: %v", field, err)
				return nil, nil
			}
		}
	}

	return blk, body
}

// submit stores a validated block and answers.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, blk *patch.Block, body []byte) {
	sum := sha256.Sum256(body)
	rec := store.Patch{
		ID:          blk.ID,
		Hash:        hex.EncodeToString(sum[:]),
		Role:        blk.Role,
		Target:      blk.TargetFile,
		Description: blk.Description,
	}
	// The request context is not used: once the record is handed to the
	// store it may land anyway, and the sender deserves the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, created, err := s.opts.Store.Submit(ctx, rec, body)
	switch {
	case errors.Is(err, store.ErrConflict):
		s.refuse(w, r, http.StatusConflict, "patch id %q was already used for a different body (state %s); use a new id", blk.ID, s.stateOf(blk.ID))
		return
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		w.Header().Set("Retry-After", "5")
		s.refuse(w, r, http.StatusServiceUnavailable, "%v", err)
		return
	case err != nil:
		s.log.Error("submit patch", "id", blk.ID, "err", err)
		s.refuse(w, r, http.StatusInternalServerError, "storing patch %q: %v", blk.ID, err)
		return
	}
	code := http.StatusAccepted
	if !created {
		code = http.StatusOK
	} else {
		// Debug: every acceptance is in events.jsonl already, and at
		// thousands per second an info line costs 5% of the CPU.
		s.log.Debug("patch accepted", "id", got.ID, "seq", got.Seq, "role", got.Role, "target", got.Target)
	}
	w.Header().Set("Location", "/patches/"+got.ID)
	s.writeJSON(w, code, answer{Status: "accepted", Result: result{
		Success: true, PatchID: got.ID, State: string(got.State), Duplicate: !created,
	}})
}

func (s *Server) stateOf(id string) string {
	if p, ok := s.opts.Store.Get(id); ok {
		return string(p.State)
	}
	return "unknown"
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

// pageSize parses ?limit= for listings.
func pageSize(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return store.DefaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("limit must be a number from 1 to 1000, not %q", v)
	}
	return n, nil
}
