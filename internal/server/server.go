// Package server is patchd's HTTP API: the webhook that takes patches, the
// patch history, health and readiness, and the OpenAPI document.
//
// It is a thin door over api.Service: it authenticates, guards Host and
// Origin, limits the rate and the body, reads it, makes one call to the
// service and writes the answer, or the refusal in the seed's shape with
// its code and field and the status its Kind maps to (api.Kind.HTTPStatus).
//
// The handler holds no globals: everything it needs comes in Options, so
// tests build as many independent servers as they like.
package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/sysinfo"
)

// Info describes the running instance for /health.
type Info struct {
	PID        int
	Port       int
	Version    string
	InstanceID string
	StartedAt  time.Time
}

// Options configures a Server.
type Options struct {
	Logger  *slog.Logger
	Info    Info
	Sampler *sysinfo.Sampler

	// Address is where the server listens (host:port). On a loopback
	// address the Host header of every request must name this machine
	// (localhost, 127.0.0.1, [::1], the address itself) or one of
	// AllowedHosts, which defeats DNS rebinding.
	Address      string
	AllowedHosts []string
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// pages may call the API; any other Origin header is refused.
	AllowedOrigins []string

	// PublicURL is where clients reach the server (--public-url): the
	// servers entry of the OpenAPI document; its host and origin are
	// allowed. "" means the listening address.
	PublicURL string
	// TrustProxy believes the forwarding headers (--trust-proxy): see
	// proxy.go for the three things they change.
	TrustProxy bool
	// HealthPublic shows /health's details to every caller; otherwise only
	// to callers with the token (or everyone under --no-auth).
	HealthPublic bool

	// Service serves the patch use cases (package patchsvc); nil serves
	// only health, readiness and the OpenAPI document.
	Service api.Service
	// Token is the webhook bearer token; "" means --no-auth. SetToken
	// replaces it while serving (patchd token --rotate).
	Token string
	// MaxBodyBytes limits webhook bodies.
	MaxBodyBytes int64
	// RateLimit (per second) and RateBurst bound webhook requests; 0 = off.
	RateLimit float64
	RateBurst int
	// MCP serves the Model Context Protocol over streamable HTTP at /mcp
	// (package mcpserver), behind the token and the Host and Origin guard;
	// nil serves no /mcp.
	MCP http.Handler
	// Metrics serves GET /metrics (package metrics: Prometheus), behind
	// the token unless MetricsPublic (--metrics-public); nil serves no
	// /metrics.
	Metrics       http.Handler
	MetricsPublic bool
	// Observer is told of every request answered (package metrics
	// counts them); nil: none.
	Observer RequestObserver
	// Dashboard serves the web dashboard at / and under /ui/ (package
	// dashboard), behind the Host and Origin guard; its session cookie
	// also admits GET /events (Authenticated). nil serves none.
	Dashboard Dashboard
}

// Dashboard is the web dashboard's handler, and whether a request carries
// the cookie of one of its sessions.
type Dashboard interface {
	http.Handler
	Authenticated(r *http.Request) bool
}

// Server is the HTTP handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	ready   atomic.Bool
	closing atomic.Bool
	limiter *limiter
	act     activity
	// refusals logs refused requests, rate-limited.
	refusals *refusalLog
	guard    *guard
	// endWaits is closed by EndWaits: webhook requests waiting for an
	// outcome answer at once.
	endWaits     chan struct{}
	endWaitsOnce sync.Once
	// tok is the token in force: Options.Token, then what SetToken set.
	tok atomic.Pointer[string]
	// heartbeat is how often a GET /events stream sends a comment
	// (eventsHeartbeat; tests shorten it).
	heartbeat time.Duration
}

// New returns a Server; it answers /ready with 503 until SetReady(true).
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Info.PID == 0 {
		opts.Info.PID = os.Getpid()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux(), limiter: newLimiter(opts.RateLimit, opts.RateBurst)}
	s.act.idle = make(chan struct{}, 1)
	s.endWaits = make(chan struct{})
	s.refusals = newRefusalLog(opts.Logger)
	s.guard = newGuard(opts)
	s.tok.Store(&opts.Token)
	s.heartbeat = eventsHeartbeat
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /ready", s.handleReady)
	s.mux.HandleFunc("GET /openapi.json", s.handleOpenAPI)
	if opts.Service != nil {
		s.mux.HandleFunc("POST /webhook", s.handleWebhook)
		s.mux.HandleFunc("GET /patches", s.handleList)
		s.mux.HandleFunc("GET /patches/{id}", s.handleGet)
		s.mux.HandleFunc("POST /patches/{id}/revert", s.handleRevert)
		s.mux.HandleFunc("DELETE /patches/{id}", s.handleDrop)
		s.mux.HandleFunc("POST /patches/preview", s.handlePreview)
		s.mux.HandleFunc("GET /file", s.handleReadFile)
		s.mux.HandleFunc("GET /files", s.handleListFiles)
		s.mux.HandleFunc("GET /events", s.handleEvents)
	}
	if opts.MCP != nil {
		s.mux.HandleFunc("/mcp", s.handleMCP)
	}
	if opts.Metrics != nil {
		s.mux.HandleFunc("GET /metrics", s.handleMetrics)
	}
	if opts.Dashboard != nil {
		s.mux.Handle("GET /{$}", opts.Dashboard)
		s.mux.Handle("/ui/", opts.Dashboard)
	}
	return s
}

// SetToken puts a new token in force for every request from now on (the
// bearer and the signature alike); the one before is refused from then.
// Under --no-auth ("" in Options.Token) nothing is checked, and SetToken
// does not change that.
func (s *Server) SetToken(tok string) {
	if s.opts.Token == "" || tok == "" {
		return
	}
	s.tok.Store(&tok)
}

// Token is the token in force, "" under --no-auth.
func (s *Server) Token() string { return *s.tok.Load() }

// SetReady flips /ready. The daemon sets it once the store is open and the
// worker runs, and clears it when shutting down.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// CloseConnections makes every later response ask the client to close its
// connection. Before a handover this lets keep-alive connections end
// cleanly after their next request, instead of being closed under a client
// that is just sending one.
func (s *Server) CloseConnections() { s.closing.Store(true) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Observer != nil {
		s.observed(w, r)
		return
	}
	s.serve(w, r)
}

// serve is ServeHTTP without the observer: the guard, then the routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		w.Header().Set("Connection", "close")
	}
	if !s.check(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Health is the body of GET /health.
type Health struct {
	Status        string          `json:"status"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	PID           int             `json:"pid"`
	Port          int             `json:"port"`
	Version       string          `json:"version"`
	InstanceID    string          `json:"instance_id"`
	StartedAt     time.Time       `json:"started_at"`
	System        *sysinfo.System `json:"system,omitempty"`
	Queue         *api.QueueStats `json:"queue,omitempty"`
	// NATS is the runner's link to NATS JetStream (--queue): /health
	// stays healthy while it is down, and says so here.
	NATS *api.NATSStatus `json:"nats,omitempty"`
}

// healthBrief is GET /health for a caller without the token: whether we
// serve, and since when; nothing about the machine or where state lives.
type healthBrief struct {
	Status        string  `json:"status"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// healthDetail says whether r may see /health's details.
func (s *Server) healthDetail(r *http.Request) bool {
	tok := s.Token()
	return s.opts.HealthPublic || tok == "" || auth.BearerOK(r.Header.Get("Authorization"), tok)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	i := s.opts.Info
	if !s.healthDetail(r) {
		h := healthBrief{Status: "ok", UptimeSeconds: time.Since(i.StartedAt).Seconds()}
		code := http.StatusOK
		if !s.ready.Load() {
			h.Status, code = "starting", http.StatusServiceUnavailable
		}
		s.writeJSON(w, code, h)
		return
	}
	h := Health{
		Status:        "ok",
		UptimeSeconds: time.Since(i.StartedAt).Seconds(),
		PID:           i.PID,
		Port:          i.Port,
		Version:       i.Version,
		InstanceID:    i.InstanceID,
		StartedAt:     i.StartedAt,
	}
	if !s.ready.Load() {
		h.Status = "starting"
	}
	if s.opts.Sampler != nil {
		sys := s.opts.Sampler.Sample()
		h.System = &sys
	}
	if s.opts.Service != nil {
		if st, err := s.opts.Service.Status(r.Context()); err == nil {
			h.Queue = &st.Queue
			h.NATS = st.NATS
		}
	}
	code := http.StatusOK
	if h.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, h)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		s.writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false})
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// writeJSON answers v as JSON. Once CloseConnections was called, the
// answer asks the client to close the connection, also for a request that
// was in flight before.
func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	if s.closing.Load() {
		w.Header().Set("Connection", "close")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Messages quote <token> and diffs hold <, > and &: keep them readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"status":"error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}
