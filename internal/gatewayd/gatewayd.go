// Package gatewayd is the wiring of `patchd gateway`: it connects to NATS
// (or starts the embedded server), ensures the streams and buckets,
// builds the gateway's api.Service (internal/gateway), buries the dead
// letters the max-deliveries advisories name, and serves the service
// through the daemon's doors unchanged: internal/server (webhook, API,
// OpenAPI, /events, /health), internal/mcpserver at /mcp, the dashboard,
// and /metrics; and, for each workspace, the same API bound to it under
// /ws/<name>/. It runs in the foreground until ctx ends; one gateway per
// state directory (its lock file).
package gatewayd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/dashboard"
	"github.com/patchd/patchd/internal/gateway"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/listen"
	"github.com/patchd/patchd/internal/logging"
	"github.com/patchd/patchd/internal/mcpserver"
	"github.com/patchd/patchd/internal/metrics"
	"github.com/patchd/patchd/internal/server"
	"github.com/patchd/patchd/internal/sysinfo"
	"github.com/patchd/patchd/internal/version"
)

// ErrAlreadyRunning is returned by Run when another gateway holds the
// state directory's lock.
var ErrAlreadyRunning = errors.New("a gateway already runs with this state dir")

// Options configure a gateway.
type Options struct {
	// Config holds the common settings: host, port, token, state dir,
	// limits, hosts and origins.
	Config *config.Config
	// NATS says how to reach an external NATS (--nats and its
	// credentials); unused with Embedded.
	NATS jetq.Options
	// Embedded starts a NATS server in this process (--embedded-nats).
	Embedded Embedded
	// Workspaces are the workspaces that exist before any runner has
	// registered (--workspaces); with Embedded, each gets a runner user.
	Workspaces []string
	// Replicas, DedupWindow, MaxDeliver and AckWait size the streams and
	// the consumers the gateway ensures.
	Replicas    int
	DedupWindow time.Duration
	MaxDeliver  int
	AckWait     time.Duration
}

// LockPath is the gateway's lock file in a state directory (not the
// daemon's, so that a gateway and a runner may share none by mistake).
func LockPath(stateDir string) string { return filepath.Join(stateDir, "gateway.lock") }

// Run serves until ctx ends.
func Run(ctx context.Context, o Options, console io.Writer) error {
	cfg := o.Config
	log := logging.Console(console, cfg.LogLevel)
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	lock, err := instance.TryLock(LockPath(cfg.StateDir))
	if errors.Is(err, instance.ErrLocked) {
		return ErrAlreadyRunning
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	token := ""
	if !cfg.NoAuth {
		if token, err = auth.LoadOrCreateToken(cfg.TokenPath()); err != nil {
			return err
		}
	} else {
		log.Warn("webhook authentication is off (--no-auth); only loopback clients can reach it")
	}

	nats, err := connect(ctx, o, log)
	if err != nil {
		return err
	}
	defer nats.Close()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := jetq.Ensure(ectx, nats.JS, jetq.EnsureOptions{Replicas: o.Replicas, DedupWindow: o.DedupWindow}); err != nil {
		return err
	}
	for _, ws := range o.Workspaces {
		if _, err := jetq.EnsureConsumer(ectx, nats.JS, ws, jetq.ConsumerOptions{MaxDeliver: o.MaxDeliver, AckWait: o.AckWait}); err != nil {
			return err
		}
	}
	svc, err := gateway.New(ectx, gateway.Options{JS: nats.JS, Workspaces: o.Workspaces, Logger: log,
		MaxEdits: cfg.MaxEdits, MaxEditsSetting: config.SettingMaxEdits})
	if err != nil {
		return err
	}
	cancel()
	// Dead letters whose runner died on each delivery: no runner may
	// read or remove a work message by its sequence (natsconf).
	deadCtx, stopDead := context.WithCancel(ctx)
	deadDone := make(chan struct{})
	go func() { defer close(deadDone); svc.DeadLetters(deadCtx) }()
	defer func() { stopDead(); <-deadDone }()

	ln, busy, err := listen.Bind(cfg.Host, cfg.Ports(), log)
	if err != nil {
		return err
	}
	if len(busy) > 0 {
		log.Warn("using a fallback port", "address", ln.Addr().String(), "busy", fmt.Sprint(busy))
	}
	g := newHTTP(cfg, svc, token, ln, log)
	served := make(chan error, 1)
	go func() { served <- g.http.Serve(g.conns.Listener(ln)) }()
	// /metrics times the applies from the runners' events, as the
	// daemon's does from its own.
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go g.met.Follow(followCtx)
	log.Info("gateway serving", "address", ln.Addr().String(), "pid", os.Getpid(), "version", version.Version,
		"nats", natsDescribe(o, nats), "workspaces", fmt.Sprint(o.Workspaces), "state_dir", cfg.StateDir)
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	log.Info("gateway shutting down", "drain_timeout", cfg.DrainTimeout.String())
	g.down(cfg.DrainTimeout, log)
	return nil
}

// gw is the gateway's HTTP side.
type gw struct {
	http    *http.Server
	root    *server.Server
	ending  func()
	met     *metrics.Metrics
	conns   *server.Conns
	mu      sync.Mutex
	servers []*server.Server
}

// maxBound bounds the per-workspace servers kept; past it one is built
// for each request.
const maxBound = 1024

func newHTTP(cfg *config.Config, svc *gateway.Service, token string, ln net.Listener, log *slog.Logger) *gw {
	g := &gw{}
	ending := make(chan struct{})
	g.ending = sync.OnceFunc(func() { close(ending) })
	started := time.Now()
	port := ln.Addr().(*net.TCPAddr).Port
	info := server.Info{PID: os.Getpid(), Port: port, Version: version.Version, StartedAt: started}
	sampler := sysinfo.NewSampler(cfg.StateDir)
	met := metrics.New(metrics.Options{Service: svc, Version: version.Version, Logger: log})
	g.met = met
	opts := func(s *gateway.Service) server.Options {
		return server.Options{
			Logger: log, Info: info, Sampler: sampler, Address: ln.Addr().String(),
			AllowedHosts: cfg.AllowedHosts, AllowedOrigins: cfg.AllowedOrigins, PublicURL: cfg.PublicURL,
			TrustProxy: cfg.TrustProxy, HealthPublic: cfg.HealthDetail == "public",
			Service: s, Token: token, MaxBodyBytes: cfg.MaxBodyBytes, RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
			MCP: mcpserver.Handler(mcpserver.Options{Service: s, Version: version.Version, Logger: log,
				MaxBodyBytes: cfg.MaxBodyBytes + 64<<10, Ending: ending}),
		}
	}
	var root *server.Server
	dash := dashboard.New(dashboard.Options{Service: svc, Token: func() string { return root.Token() },
		PublicURL: cfg.PublicURL, MaxBodyBytes: cfg.MaxBodyBytes, Logger: log,
		Info: dashboard.Info{PID: os.Getpid(), Port: port, Version: version.Version, StartedAt: started}})
	ro := opts(svc)
	ro.Metrics, ro.MetricsPublic, ro.Observer, ro.Dashboard = met.Handler(), cfg.MetricsPublic, met, dash
	root = server.New(ro)
	root.SetReady(true)
	g.root = root
	g.servers = append(g.servers, root)

	bound := map[string]*server.Server{}
	mux := http.NewServeMux()
	mux.Handle("/", root)
	mux.HandleFunc("/ws/{ws}/", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("ws")
		g.mu.Lock()
		s := bound[name]
		g.mu.Unlock()
		if s == nil {
			b, err := svc.Bind(name)
			if err != nil {
				// Not a workspace name: answered as the root server
				// answers a path it does not serve, after its guard.
				root.ServeHTTP(w, r)
				return
			}
			s = server.New(opts(b))
			s.SetReady(true)
			// Kept only once it exists: a name nobody registered
			// costs one server per request, not memory for ever.
			if svc.Exists(r.Context(), name) == nil {
				g.mu.Lock()
				if bound[name] == nil && len(bound) < maxBound {
					bound[name] = s
					g.servers = append(g.servers, s)
				} else if bound[name] != nil {
					s = bound[name]
				}
				g.mu.Unlock()
			}
		}
		h := http.StripPrefix("/ws/"+name, s)
		if r.Method == http.MethodGet && r.URL.Path == "/ws/"+name+"/openapi.json" {
			serveOpenAPI(w, r, h, "/ws/"+name)
			return
		}
		h.ServeHTTP(w, r)
	})
	g.conns = server.NewConns(connLimits(cfg, log))
	g.http = &http.Server{
		ConnState:         g.conns.ConnState,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return g
}

// down ends the waits, then shuts the HTTP server down (up to drain).
func (g *gw) down(drain time.Duration, log *slog.Logger) {
	g.mu.Lock()
	for _, s := range g.servers {
		s.SetReady(false)
		s.EndWaits()
	}
	g.mu.Unlock()
	g.ending()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := g.http.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at the drain timeout were cut", "err", err)
		g.http.Close()
	}
}

// natsDescribe says which NATS the gateway uses, for the log: never a
// password.
func natsDescribe(o Options, l *jetq.Link) string {
	if l.Server != nil {
		return "embedded " + l.ClientURL()
	}
	return jetq.Redact(o.NATS.URL)
}

// defaultMaxConns bounds the gateway's HTTP connections open at once when
// --max-conns does not: a gateway holds no journal or workspace files,
// so the file limit is left to the NATS connection and these.
const defaultMaxConns = 4096

// connLimits are --max-conns (defaultMaxConns) and --max-conns-per-client
// (half of it), as the daemon's: one client never takes every place.
func connLimits(cfg *config.Config, log *slog.Logger) server.ConnLimits {
	l := server.ConnLimits{Max: cfg.MaxConns, PerClient: cfg.MaxConnsPerClient, Logger: log}
	if l.Max <= 0 {
		l.Max = defaultMaxConns
	}
	if l.PerClient <= 0 {
		l.PerClient = max(1, l.Max/2)
	}
	l.PerClient = min(l.PerClient, l.Max)
	return l
}
