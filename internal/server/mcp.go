package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// mcpWriteTime is how long a request at /mcp may take, from its start to
// its answer's end: an apply_patch call waits up to 55 s for the outcome
// (mcpserver's MaxWaitSeconds), past the server's 30 s timeouts for other
// requests.
const mcpWriteTime = 90 * time.Second

// handleMCP is /mcp: the token, the rate limit, then the MCP handler
// (Options.MCP). Host and Origin were checked before (ServeHTTP), as for
// every request.
func (s *Server) handleMCP(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	if r.Method == http.MethodPost && !s.limiter.allow() {
		s.refusef(w, r, api.KindRateLimited, api.CodeRateLimited, "", "too many requests: more than %g per second; retry after 1s", s.opts.RateLimit)
		return
	}
	// The server's read and write timeouts (30 s) run from the request's
	// start, and a read deadline that passes cancels the request's
	// context: this one's connection must outlive its wait. (A server
	// without timeouts, in tests, refuses the calls; the request goes on
	// either way.)
	rc := http.NewResponseController(w)
	live := time.Now().Add(mcpWriteTime)
	rc.SetReadDeadline(live)
	rc.SetWriteDeadline(live)
	rw := &refusalWriter{ResponseWriter: w}
	s.opts.MCP.ServeHTTP(rw, r)
	if loggedStatus(rw.code) {
		s.refusals.refused(rw.code, s.clientAddr(r), r.Method, r.URL.Path, rw.reason())
	}
}

// refusalWriter records the status of an answer the MCP handler (the
// SDK) writes itself, and when it is one a refusal log line is due for
// (loggedStatus), the start of its text, so that the door's own
// refusals are logged like the server's (finding 20). Unwrap lets
// http.ResponseController reach the connection (flushes and deadlines).
type refusalWriter struct {
	http.ResponseWriter
	code int
	text []byte
}

func (w *refusalWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if loggedStatus(w.code) && len(w.text) < refusalTextMax {
		w.text = append(w.text, b[:min(len(b), refusalTextMax-len(w.text))]...)
	}
	return w.ResponseWriter.Write(b)
}

// Flush serves handlers that flush through the http.Flusher interface.
func (w *refusalWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// reason is the first line of the refusal's text.
func (w *refusalWriter) reason() string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(w.text)), "\n")
	return line
}
