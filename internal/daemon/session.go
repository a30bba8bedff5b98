package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/alert"
	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/dashboard"
	"github.com/patchd/patchd/internal/fsutil"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/listen"
	"github.com/patchd/patchd/internal/mcpserver"
	"github.com/patchd/patchd/internal/metrics"
	"github.com/patchd/patchd/internal/natsrun"
	"github.com/patchd/patchd/internal/notify"
	"github.com/patchd/patchd/internal/server"
	"github.com/patchd/patchd/internal/sysinfo"
	"github.com/patchd/patchd/internal/version"
)

// session is one tenure as the active instance: from taking the lock to a
// stop or a handover to a successor.
type session struct {
	cfg      *config.Config
	log      *slog.Logger
	lock     *instance.Lock
	inh      inheritance
	notifier *notify.Notifier
	started  time.Time
	id       string

	address string
	port    int
	// The session's own duplicates of the listening sockets: the serving
	// stack is rebuilt from them after a failed handover, and they are what
	// a successor receives.
	httpFile, ctlFile *os.File

	stop context.CancelFunc
	// stopCommanded is set when `patchd stop` asked us to stop.
	stopCommanded atomic.Bool
	restarts      chan chan restartResult
	hup           <-chan os.Signal // SIGHUP: restart

	mu    sync.Mutex
	stack *stack
	// handedTo holds the restart command's connection after a handover.
	handedTo *control.Server
}

// stopResult is the answer to "stop": our pid and those of the standbys
// that exited because of it.
type stopResult struct {
	PID      int   `json:"pid"`
	Standbys []int `json:"standbys,omitempty"`
}

// standbyStopWait bounds how long a stop waits for the standbys to exit.
const standbyStopWait = 5 * time.Second

type restartResult struct {
	PID         int    `json:"pid"`
	PreviousPID int    `json:"previous_pid"`
	Address     string `json:"address"`
	err         error
}

// maxYield bounds how long the worker puts off each patch while webhook
// requests are being handled. Under a sustained burst it still applies
// about one patch per maxYield, plus whatever the gaps between requests
// allow; a single sender (post, then poll) is never delayed, since its
// request has been answered by the time the worker looks.
const maxYield = 10 * time.Millisecond

// run serves until ctx is done, a stop arrives, or the session hands over
// to a successor (handedOver).
func (s *session) run(parent context.Context) (handedOver bool, err error) {
	ctx, stop := context.WithCancel(parent)
	defer stop()
	s.stop = stop
	s.restarts = make(chan chan restartResult)
	cfg, log := s.cfg, s.log

	if err := s.openListeners(); err != nil {
		s.abortHandover(err)
		return false, err
	}
	defer func() {
		s.httpFile.Close()
		s.ctlFile.Close()
		if !handedOver {
			// The files describe us; a successor has rewritten them.
			os.Remove(cfg.ControlPath())
			os.Remove(cfg.StatePath())
			if cfg.PIDFile != "" {
				os.Remove(cfg.PIDFile)
			}
		}
	}()

	if s.inh.handover != nil {
		if err := s.awaitGo(); err != nil {
			return false, err
		}
		// The predecessor has let go and only waits for "ready" (or our
		// error, sent over the handshake): our output goes back where
		// it belongs before the worker can start a check.
		if err := restoreStderr(s.inh.stderr); err != nil {
			log.Warn("restart: restore stderr", "err", err)
		}
		s.inh.stderr = nil
	}
	st, err := s.up(ctx)
	if err != nil {
		s.abortHandover(err)
		return false, err
	}
	if err := s.publish(); err != nil {
		s.abortHandover(err)
		st.down(log, cfg.DrainTimeout, 0)
		return false, err
	}
	log.Info("serving", "address", s.address, "pid", os.Getpid(), "version", version.Version, "workspace", cfg.Workspace, "state_dir", cfg.StateDir)
	s.announceReady()
	go s.notifier.Watchdog(ctx, s.alive)
	go st.in.worker.RepairSummaries()
	st.startRetention(cfg.Retain, log)

	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "drain_timeout", cfg.DrainTimeout.String())
			s.notifier.Stopping()
			// Close our copies of the sockets first, so the port refuses
			// new connections as soon as the server stops accepting.
			s.httpFile.Close()
			s.ctlFile.Close()
			s.current().api.SetReady(false)
			s.current().down(log, cfg.DrainTimeout, 0)
			log.Info("stopped")
			return false, nil
		case err := <-s.current().served:
			log.Error("http server stopped", "err", err)
			s.current().down(log, cfg.DrainTimeout, 0)
			return false, fmt.Errorf("serve %s: %w", s.address, err)
		case <-s.hup:
			log.Info("SIGHUP: restarting into the binary on disk")
			go func() {
				if r := s.requestRestart(ctx); r.err != nil {
					log.Error("restart failed; still serving", "err", r.err)
				}
			}()
		case reply := <-s.restarts:
			old := s.current()
			pid, err := s.handover(ctx, old)
			if err != nil {
				reply <- restartResult{err: err}
				continue
			}
			reply <- restartResult{PID: pid, PreviousPID: os.Getpid(), Address: s.address}
			// Let the restart command get its answer before we go.
			old.ctl.Close()
			s.handedTo = old.ctl
			return true, nil
		}
	}
}

// openListeners binds the port and the control socket, or adopts the ones a
// restarting predecessor passed, and keeps duplicates of both.
func (s *session) openListeners() error {
	var httpLn, ctlLn net.Listener
	switch {
	case s.inh.listeners != nil:
		httpLn, ctlLn = s.inh.listeners["http"], s.inh.listeners["control"]
		if httpLn == nil || ctlLn == nil {
			return fmt.Errorf("restart handed over %d sockets, want http and control", len(s.inh.listeners))
		}
	case s.inh.activated != nil:
		// systemd socket activation: systemd bound the port and keeps it
		// open across our restarts.
		httpLn = s.inh.activated
		s.log.Info("serving on the socket passed by systemd", "address", httpLn.Addr().String())
		var err error
		if ctlLn, err = control.Listen(s.cfg.ControlPath()); err != nil {
			httpLn.Close()
			return err
		}
	default:
		ln, busy, err := listen.Bind(s.cfg.Host, s.cfg.Ports(), s.log)
		if err != nil {
			s.log.Error("no port", "err", err)
			return err
		}
		if len(busy) > 0 {
			s.log.Warn("using a fallback port", "address", ln.Addr().String(), "busy", fmt.Sprint(busy))
		}
		httpLn = ln
		if ctlLn, err = control.Listen(s.cfg.ControlPath()); err != nil {
			ln.Close()
			return err
		}
	}
	defer httpLn.Close()
	defer ctlLn.Close()
	s.address = httpLn.Addr().String()
	s.port = httpLn.Addr().(*net.TCPAddr).Port
	var err error
	if s.httpFile, err = listen.File(httpLn); err != nil {
		return err
	}
	if s.ctlFile, err = listen.File(ctlLn); err != nil {
		s.httpFile.Close()
		return err
	}
	return nil
}

// publish writes the state file (and the plain PID file if asked), which
// say where we serve.
func (s *session) publish() error {
	st := instance.State{
		PID: os.Getpid(), Address: s.address, Port: s.port, InstanceID: s.id,
		Version: version.Version, StartedAt: s.started,
		Workspace: s.cfg.Workspace, StateDir: s.cfg.StateDir,
	}
	if err := instance.WriteState(s.cfg.StatePath(), st); err != nil {
		return err
	}
	if s.cfg.PIDFile != "" {
		if err := fsutil.WriteFileAtomic(s.cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("--pid-file: %w", err)
		}
	}
	return nil
}

// announceReady tells whoever waits for us: the restarting predecessor, the
// `patchd start` that spawned us, and the supervisor.
func (s *session) announceReady() {
	switch {
	case s.inh.handover != nil:
		// The predecessor tells systemd about our pid; it is still the
		// main process systemd listens to.
		writeJSONLine(s.inh.handover, handoverMsg{State: "ready", PID: os.Getpid()})
		s.inh.handover.Close()
	default:
		s.notifier.Ready(fmt.Sprintf("serving on %s", s.address))
	}
	if s.inh.ready != nil {
		if err := writeJSONLine(s.inh.ready, s.status()); err != nil {
			s.log.Warn("tell the starter we are ready", "err", err)
		}
		s.inh.ready.Close()
	}
}

func (s *session) current() *stack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stack
}

// alive is the watchdog's question: does our own /health answer?
func (s *session) alive() bool {
	st := s.current()
	if st == nil || !st.workerRunning() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Probe(ctx, s.address, st.api.Token())
	return err == nil
}

func (s *session) status() Status {
	st := Status{
		Running: true, PID: os.Getpid(), Address: s.address, Port: s.port,
		UptimeSeconds: time.Since(s.started).Seconds(), Version: version.Version,
		InstanceID: s.id, StartedAt: s.started, StateDir: s.cfg.StateDir, Workspace: s.cfg.Workspace,
	}
	if cur := s.current(); cur != nil {
		if qs, err := cur.in.svc.Status(context.Background()); err == nil {
			st.Queue = qs.Queue
			st.Notify = qs.Notify
			st.NATS = qs.NATS
		}
		st.Standbys = len(cur.ctl.Standbys())
	}
	return st
}

func (s *session) handleControl(ctx context.Context, cmd string, args json.RawMessage) (any, bool, error) {
	switch cmd {
	case CmdPrune:
		return s.prune(ctx, args)
	case "status":
		return s.status(), false, nil
	case "stop":
		s.log.Info("stop requested on the control socket")
		s.stopCommanded.Store(true)
		// The stop is the instance's: standbys must not take over. The
		// marker is for one that has not registered with us yet.
		if err := instance.MarkStop(s.cfg.StopPath()); err != nil {
			s.log.Warn("stop: standbys that are not registered may take over", "err", err)
		}
		wctx, cancel := context.WithTimeout(context.Background(), standbyStopWait)
		standbys := s.current().ctl.StopStandbys(wctx)
		cancel()
		if len(standbys) > 0 {
			s.log.Info("stop: the standbys exited", "pids", fmt.Sprint(standbys))
		}
		s.stop()
		return stopResult{PID: os.Getpid(), Standbys: standbys}, true, nil
	case CmdReloadToken:
		return s.reloadToken()
	case "restart":
		r := s.requestRestart(ctx)
		if r.err != nil {
			return nil, false, r.err
		}
		// Held open until this process has let go of everything, so that
		// `patchd restart` returns with exactly one daemon left.
		return r, true, nil
	}
	return nil, false, fmt.Errorf("unknown command %q", cmd)
}

// CmdReloadToken is the control command `patchd token --rotate` sends
// once it has written the new token: the daemon reads the token file again
// and puts what it holds in force.
const CmdReloadToken = "reload-token"

// TokenReloaded is the answer to CmdReloadToken.
type TokenReloaded struct {
	PID int `json:"pid"`
}

// reloadToken reads the token file and puts its token in force for every
// request from now on: the old one is refused from then. Reading it here,
// once per rotation, costs requests nothing (the server swaps one pointer).
func (s *session) reloadToken() (any, bool, error) {
	if s.cfg.NoAuth {
		return nil, false, fmt.Errorf("patchd runs with --no-auth: it checks no token")
	}
	tok, err := auth.ReadToken(s.cfg.TokenPath())
	if err != nil {
		return nil, false, fmt.Errorf("read the token: %w", err)
	}
	s.current().api.SetToken(tok)
	s.log.Info("token rotated: the new token is in force, the old one is refused")
	return TokenReloaded{PID: os.Getpid()}, false, nil
}

// requestRestart asks the session loop to hand over and waits for the outcome.
func (s *session) requestRestart(ctx context.Context) restartResult {
	reply := make(chan restartResult, 1)
	select {
	case s.restarts <- reply:
	case <-ctx.Done():
		return restartResult{err: fmt.Errorf("shutting down")}
	}
	return <-reply
}

// stack is the serving machinery built on the listening sockets: store,
// worker, HTTP server and control server. A failed handover builds it again.
type stack struct {
	in       *intake
	api      *server.Server
	http     *http.Server
	ln       net.Listener
	served   chan error
	ctl      *control.Server
	stopWork context.CancelFunc
	worked   chan error
	conns    *server.Conns
	endMCP   func() // ends the MCP tools' waits (mcpserver.Options.Ending)
	// endRetention stops the scheduled prunes and waits for the one
	// running (retention.go); nil when --retain is forever.
	endRetention func()
	// alerts is the notification outbox (alerts.go); nil without --notify.
	alerts *alert.Outbox
	// runner is the NATS runner (natsrun.go); nil without --queue.
	runner *natsrun.Runner
}

// up builds and starts a stack on the session's sockets.
func (s *session) up(ctx context.Context) (*stack, error) {
	cfg, log := s.cfg, s.log
	httpLn, err := net.FileListener(s.httpFile)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.address, err)
	}
	ctlLn, err := net.FileListener(s.ctlFile)
	if err != nil {
		httpLn.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	maxConns, perClient, err := connLimits(cfg)
	if err != nil {
		httpLn.Close()
		ctlLn.Close()
		return nil, err
	}
	log.Debug("connection limits", "max_conns", maxConns, "max_conns_per_client", perClient, "file_limit", fileLimit())
	in, err := openIntake(cfg, log)
	if err != nil {
		httpLn.Close()
		ctlLn.Close()
		return nil, err
	}
	st := &stack{in: in, served: make(chan error, 1), worked: make(chan error, 1), conns: server.NewConns(server.ConnLimits{Max: maxConns, PerClient: perClient, Logger: log})}
	if err := st.openAlerts(cfg, log); err != nil {
		in.close()
		httpLn.Close()
		ctlLn.Close()
		return nil, err
	}
	// Prometheus metrics on a registry of this stack's own.
	met := metrics.New(metrics.Options{Service: in.svc, Version: version.Version, Logger: log})
	mcpEnding := make(chan struct{})
	st.endMCP = sync.OnceFunc(func() { close(mcpEnding) })
	// The dashboard's sessions hold for the token the server holds now: a
	// rotation (SetToken) ends every session opened with the old one.
	var srv *server.Server
	dash := dashboard.New(dashboard.Options{
		Service: in.svc, Token: func() string { return srv.Token() }, PublicURL: cfg.PublicURL, MaxBodyBytes: cfg.MaxBodyBytes, Logger: log,
		Info: dashboard.Info{PID: os.Getpid(), Port: s.port, Version: version.Version, StartedAt: s.started},
		Standbys: func() int {
			if cur := s.current(); cur != nil && cur.ctl != nil {
				return len(cur.ctl.Standbys())
			}
			return 0
		},
	})
	st.api = server.New(server.Options{
		Logger:         log,
		Info:           server.Info{PID: os.Getpid(), Port: s.port, Version: version.Version, InstanceID: s.id, StartedAt: s.started},
		Sampler:        sysinfo.NewSampler(cfg.StateDir),
		Address:        s.address,
		AllowedHosts:   cfg.AllowedHosts,
		AllowedOrigins: cfg.AllowedOrigins,
		PublicURL:      cfg.PublicURL,
		TrustProxy:     cfg.TrustProxy,
		HealthPublic:   cfg.HealthDetail == "public",
		Service:        in.svc,
		Token:          in.token,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		RateLimit:      cfg.RateLimit,
		RateBurst:      cfg.RateBurst,
		// A call's envelope around the patch block is small.
		MCP:           mcpserver.Handler(mcpserver.Options{Service: in.svc, Version: version.Version, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes + 64<<10, Ending: mcpEnding}),
		Metrics:       met.Handler(),
		MetricsPublic: cfg.MetricsPublic,
		Observer:      met,
		Dashboard:     dash,
	})
	srv = st.api
	st.http = &http.Server{
		Handler:           st.api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         st.conns.ConnState,
	}
	// Acknowledging first: before each patch the worker lets webhook
	// requests in progress finish, for at most maxYield, so that a burst
	// is answered at once and applied in its gaps.
	api := st.api
	in.worker.SetYield(func(ctx context.Context) { api.WaitWebhooksIdle(ctx, maxYield) })
	workCtx, stopWork := context.WithCancel(context.Background())
	st.stopWork = stopWork
	go func() { st.worked <- in.worker.Run(workCtx) }()
	go met.Follow(workCtx)
	// Ready before the first accept: nobody should see "starting" from a
	// daemon whose store is open and whose worker runs.
	st.api.SetReady(true)
	st.ln = httpLn
	go func() { st.served <- st.http.Serve(st.conns.Listener(httpLn)) }()
	st.ctl = control.NewServer(ctlLn, s.handleControl, log)
	go st.ctl.Serve(ctx)
	if err := st.startRunner(cfg, s.id, log); err != nil {
		// Not serving what it was asked to serve: say so, stop.
		st.down(log, cfg.DrainTimeout, 0)
		return nil, err
	}
	s.mu.Lock()
	s.stack = st
	s.mu.Unlock()
	return st, nil
}

func (st *stack) workerRunning() bool {
	select {
	case err := <-st.worked:
		st.worked <- err // keep it for down
		return false
	default:
		return true
	}
}

// down stops the stack: no more control or HTTP connections, requests in
// flight finished (up to drain), the patch being applied finished, the
// store closed.
//
// With grace > 0 (a handover), it first stops accepting, lets every
// response ask for "Connection: close", closes idle connections, and waits
// (up to grace) for the requests in flight to end that way. Only then does it shut the server down,
// because net/http drops, unanswered, any request it reads once shutdown has
// begun; connections not yet accepted wait in the kernel's backlog for the
// successor.
func (st *stack) down(log *slog.Logger, drain, grace time.Duration) {
	// No patch is taken from the queue from now on; the one waited for
	// goes back to it for the successor, while the requests drain.
	runnerStopped := make(chan struct{})
	go func() {
		defer close(runnerStopped)
		st.stopRunner()
	}()
	// Senders waiting for an outcome get the patch's state now: the
	// patch is stored, and the drain must not wait for their waits.
	st.api.EndWaits()
	st.endMCP()
	st.ctl.StopAccepting()
	// Whoever serves the socket next counts and stops them.
	st.ctl.DropStandbys()
	if grace > 0 {
		// Still serving, and healthy, until the successor takes over.
		st.api.CloseConnections()
		st.ln.Close()
		// Idle keep-alive connections are closed at once: waiting for
		// them would keep every new connection in the backlog. One that
		// went idle only just now may be sending its next request, which
		// is answered (with "Connection: close"); it gets handoverIdle.
		deadline := time.Now().Add(grace)
		closed := 0
		for st.conns.Open() > 0 && time.Now().Before(deadline) {
			closed += st.conns.CloseIdle(handoverIdle)
			time.Sleep(time.Millisecond)
		}
		if closed > 0 {
			log.Info("restart: closed idle keep-alive connections", "connections", closed)
		}
		if n := st.conns.Open(); n > 0 {
			log.Info("restart: requests still in flight after the grace; shutting down", "connections", n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := st.http.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at the drain timeout were cut", "err", err)
		st.http.Close()
	}
	<-runnerStopped
	st.stopWork()
	<-st.worked
	if st.endRetention != nil {
		st.endRetention()
	}
	st.closeAlerts(log)
	st.in.close()
}

// handoverMsg is one line of the restart handshake between the old and the
// new daemon.
type handoverMsg struct {
	State string `json:"state,omitempty"` // "prepared", "ready"
	Cmd   string `json:"cmd,omitempty"`   // "go"
	PID   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}
