package server

import (
	"net/http"
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
	s.opts.MCP.ServeHTTP(w, r)
}
