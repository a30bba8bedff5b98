package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// waitMargin is how long past its wait a waiting webhook request's
// connection may still be read and written: the answer's write, and a
// body still arriving behind the one read.
const waitMargin = 10 * time.Second

// waitParam reads ?wait= of POST /webhook: 0 when absent or empty; else a
// duration (30s, 1m) or a number of seconds, above 0 and at most
// api.MaxWait.
func waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, nerr := strconv.ParseFloat(v, 64); nerr == nil && n > 0 && n <= api.MaxWait.Seconds() {
			d, err = time.Duration(math.Round(n*1000))*time.Millisecond, nil
		}
	}
	if err != nil || d <= 0 || d > api.MaxWait {
		return 0, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "wait",
			"wait must be a duration above 0 and at most %s, like 30s (or a number of seconds), not %q", api.MaxWait, v)
	}
	return d, nil
}

// EndWaits ends every webhook request waiting for a patch's outcome, now
// and from now on: each answers at once with the patch's state as it
// stands (202); and every GET /events stream (its client reconnects with
// Last-Event-ID). The daemon calls it when it begins to stop or to hand
// over to its successor, which must not wait for them.
func (s *Server) EndWaits() { s.endWaitsOnce.Do(func() { close(s.endWaits) }) }

// answerOutcome answers a submitted patch once it is finished, within
// wait: 200 with its outcome (applied: the diff and files; failed: its
// error and code, result.success false; reverted), or, if it is not
// finished by then, 202 with its state and a note saying how to learn the
// outcome. The request was accepted either way: the patch is stored.
func (s *Server) answerOutcome(w http.ResponseWriter, r *http.Request, res api.SubmitResult, wait time.Duration) {
	// The server's read and write timeouts (30 s) run from the request's
	// start: this request's connection must outlive its wait. (A read
	// deadline that passes cancels the request's context.)
	rc := http.NewResponseController(w)
	live := time.Now().Add(wait + waitMargin)
	rc.SetReadDeadline(live)
	rc.SetWriteDeadline(live)

	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	go func() {
		select {
		case <-s.endWaits:
			cancel()
		case <-ctx.Done():
		}
	}()
	p, err := s.opts.Service.Wait(ctx, res.PatchID)
	cancel()
	out := result{PatchID: res.PatchID, State: res.State, Duplicate: res.Duplicate, Attempt: res.Attempt}
	if err != nil || !api.Finished(p.State) {
		if p.State != "" {
			out.State = p.State
		}
		out.Success = true
		out.Note = fmt.Sprintf("not finished within %s: call getPatch (GET /patches/%s) until its state is applied or failed", wait, res.PatchID)
		if s.waitsEnded() {
			out.Note = fmt.Sprintf("patchd is restarting or stopping; the patch is stored and will be applied: call getPatch (GET /patches/%s) for its outcome", res.PatchID)
		}
		code := http.StatusAccepted
		if res.Duplicate {
			code = http.StatusOK
		}
		s.writeJSON(w, code, answer{Status: "accepted", Result: out})
		return
	}
	// The answer stays under api.MaxAnswerChars: a long diff is cut,
	// and the note says where the rest is.
	if api.FitPatch(&p, 0) && p.DiffNext > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("diff cut: bytes 0 to %d of %d shown; GET /patches/%s?diff_offset=%d for the rest (getPatch with diff_offset)", p.DiffNext, p.DiffSize, url.PathEscape(p.ID), p.DiffNext))
	}
	out.State, out.Diff, out.Notes = p.State, p.Diff, p.Notes
	for _, f := range p.Files {
		out.Files = append(out.Files, f.Path)
	}
	switch p.State {
	case api.StateApplied:
		out.Success = true
	case api.StateFailed:
		out.Error, out.Code = p.Error, p.Code
	case api.StateReverted:
		out.Note = "it was applied, then reverted"
	}
	s.writeJSON(w, http.StatusOK, answer{Status: p.State, Result: out})
}

// waitsEnded reports whether EndWaits was called.
func (s *Server) waitsEnded() bool {
	select {
	case <-s.endWaits:
		return true
	default:
		return false
	}
}
