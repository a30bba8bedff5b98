package server

import (
	"net/http"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// mcpWriteTime is how long an answer at /mcp may take to write: an
// apply_patch call waits up to 55 s for the outcome (mcpserver's
// MaxWaitSeconds), past the server's 30 s write timeout for other answers.
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
	// A server without a write timeout (tests) refuses the call; the
	// request goes on either way.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(mcpWriteTime))
	s.opts.MCP.ServeHTTP(w, r)
}
