package server

import (
	"net/http"
	"time"
)

// RequestObserver is told of every request the server answered: the
// pattern of the route that served it ("" when none matched or the request
// was refused before routing), its status and how long its handler took.
// It is called on every request, so it must be cheap, and safe for
// concurrent use (package metrics implements it).
type RequestObserver interface {
	ObserveRequest(pattern string, code int, d time.Duration)
}

// handleMetrics is GET /metrics: Options.Metrics, behind the token unless
// Options.MetricsPublic (--metrics-public).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.opts.MetricsPublic && !s.requireToken(w, r) {
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}

// observed serves r and tells the observer of it.
func (s *Server) observed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	s.serve(sw, r)
	code := sw.code
	if code == 0 {
		code = http.StatusOK
	}
	// The mux set r.Pattern on this very request when it routed it.
	s.opts.Observer.ObserveRequest(r.Pattern, code, time.Since(start))
}

// statusWriter records the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection (flushes and deadlines).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush serves handlers that flush through the http.Flusher interface.
func (w *statusWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
