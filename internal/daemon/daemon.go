// Package daemon wires one patchd instance together: the instance lock, the
// port, the control socket, the HTTP server and the state file, in the order
// that keeps "exactly one of it, answering on its port" true at every step.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/fsutil"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/listen"
	"github.com/patchd/patchd/internal/logging"
	"github.com/patchd/patchd/internal/server"
	"github.com/patchd/patchd/internal/sysinfo"
	"github.com/patchd/patchd/internal/version"
)

// ErrAlreadyRunning is returned by Run with --if-running=exit when another
// instance holds the lock.
var ErrAlreadyRunning = errors.New("already running")

// Environment variables of the parent-to-child handoff used by `patchd start`.
// They are internal: not settings, and removed from the environment once read
// so that no grandchild inherits them by mistake.
const (
	envLockFD   = "PATCHD_INTERNAL_LOCK_FD"
	envReadyFD  = "PATCHD_INTERNAL_READY_FD"
	envDetached = "PATCHD_INTERNAL_DETACHED"
)

// Status is what the control socket's "status" answers and what
// `patchd status --json` prints.
type Status struct {
	Running       bool      `json:"running"`
	PID           int       `json:"pid,omitempty"`
	Address       string    `json:"address,omitempty"`
	Port          int       `json:"port,omitempty"`
	UptimeSeconds float64   `json:"uptime_seconds,omitempty"`
	Version       string    `json:"version,omitempty"`
	InstanceID    string    `json:"instance_id,omitempty"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	StateDir      string    `json:"state_dir"`
	Workspace     string    `json:"workspace"`
	Queue         any       `json:"queue,omitempty"`
}

// Run runs the daemon in the foreground until ctx is done or a stop arrives
// on the control socket. console receives text logs (nil: none).
func Run(ctx context.Context, cfg *config.Config, console io.Writer) error {
	if os.Getenv(envDetached) != "" {
		console = nil
	}
	log := logging.Console(console, cfg.LogLevel)
	if err := PrepareStateDir(cfg.StateDir); err != nil {
		return err
	}

	lock, err := acquire(ctx, cfg, log)
	if err != nil || lock == nil {
		return err
	}
	defer lock.Release()

	logFile, err := logging.OpenFile(cfg.LogPath(), cfg.LogMaxSizeMB, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("open log %s: %w", cfg.LogPath(), err)
	}
	defer logFile.Close()
	log = logFile.Tee(log)

	d := &daemon{cfg: cfg, log: log, lock: lock, started: time.Now(), id: newID()}
	return d.run(ctx)
}

// acquire takes the instance lock: inherited from `patchd start`, at once,
// or, as a standby, when the active instance goes. A nil lock with a nil
// error means ctx ended while standing by.
func acquire(ctx context.Context, cfg *config.Config, log *slog.Logger) (*instance.Lock, error) {
	if fd := os.Getenv(envLockFD); fd != "" {
		os.Unsetenv(envLockFD)
		n, err := strconv.Atoi(fd)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", envLockFD, fd, err)
		}
		return instance.FromFile(os.NewFile(uintptr(n), "patchd.lock"))
	}
	lock, err := instance.TryLock(cfg.LockPath())
	if !errors.Is(err, instance.ErrLocked) {
		return lock, err
	}
	holder := describeHolder(cfg)
	if cfg.IfRunning == "exit" {
		return nil, fmt.Errorf("%w: %s holds %s", ErrAlreadyRunning, holder, cfg.LockPath())
	}
	log.Info("standing by: another instance is active; taking over when it exits", "active", holder, "lock", cfg.LockPath())
	lock, err = instance.Wait(ctx, cfg.LockPath())
	if errors.Is(err, context.Canceled) {
		log.Info("standby stopped before taking over")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	log.Info("taking over as the active instance")
	return lock, nil
}

// describeHolder names the active instance as well as the state file can.
func describeHolder(cfg *config.Config) string {
	if st, err := instance.ReadState(cfg.StatePath()); err == nil && st.PID != 0 {
		return fmt.Sprintf("pid %d (%s)", st.PID, st.Address)
	}
	return "another process"
}

type daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	lock    *instance.Lock
	started time.Time
	id      string

	mu      sync.Mutex
	address string
	port    int
	stop    context.CancelFunc
	queue   func() any
}

func (d *daemon) run(parent context.Context) error {
	cfg, log := d.cfg, d.log
	ctx, stop := context.WithCancel(parent)
	defer stop()
	d.stop = stop

	ln, busy, err := listen.Bind(cfg.Host, cfg.Ports(), log)
	if err != nil {
		log.Error("no port", "err", err)
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	d.address, d.port = ln.Addr().String(), addr.Port
	if len(busy) > 0 {
		log.Warn("using a fallback port", "port", d.port, "busy", fmt.Sprint(busy))
	}

	ctl, err := control.Listen(cfg.ControlPath())
	if err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(cfg.ControlPath())
	// The socket is bound now but served only once we are ready: a client
	// that connects early waits in the backlog, so "status answers" always
	// means "ready".
	ctlSrv := control.NewServer(ctl, d.handleControl, log)
	defer ctlSrv.Close()

	in, err := openIntake(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer in.close()
	d.queue = func() any { return in.store.Stats() }

	api := server.New(server.Options{
		Logger:       log,
		Info:         server.Info{PID: os.Getpid(), Port: d.port, Version: version.Version, InstanceID: d.id, StartedAt: d.started},
		Sampler:      sysinfo.NewSampler(cfg.StateDir),
		Queue:        d.queue,
		Store:        in.store,
		Token:        in.token,
		MaxBodyBytes: cfg.MaxBodyBytes,
		RateLimit:    cfg.RateLimit,
		RateBurst:    cfg.RateBurst,
		CheckPath:    in.ws.Check,
		Revert:       in.worker.Revert,
	})
	httpSrv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	st := d.state()
	if err := instance.WriteState(cfg.StatePath(), st); err != nil {
		httpSrv.Close()
		return err
	}
	defer os.Remove(cfg.StatePath())
	if cfg.PIDFile != "" {
		if err := fsutil.WriteFileAtomic(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			httpSrv.Close()
			return fmt.Errorf("--pid-file: %w", err)
		}
		defer os.Remove(cfg.PIDFile)
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	worked := make(chan error, 1)
	go func() { worked <- in.worker.Run(workCtx) }()
	api.SetReady(true)
	go ctlSrv.Serve(ctx)
	log.Info("serving", "address", d.address, "pid", os.Getpid(), "version", version.Version, "workspace", cfg.Workspace, "state_dir", cfg.StateDir)
	notifyReady(d.status(), log)

	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("http server stopped", "err", err)
		return fmt.Errorf("serve %s: %w", d.address, err)
	}

	log.Info("shutting down", "drain_timeout", cfg.DrainTimeout.String())
	api.SetReady(false)
	// A fresh context: the one that asked us to stop is already done.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the drain timeout were cut", "err", err)
		httpSrv.Close()
	}
	// Requests are drained; the patch being applied finishes, the queue
	// stays on disk for the next start.
	stopWork()
	<-worked
	log.Info("stopped")
	return nil
}

func (d *daemon) state() instance.State {
	return instance.State{
		PID: os.Getpid(), Address: d.address, Port: d.port, InstanceID: d.id,
		Version: version.Version, StartedAt: d.started,
		Workspace: d.cfg.Workspace, StateDir: d.cfg.StateDir,
	}
}

func (d *daemon) status() Status {
	s := Status{
		Running: true, PID: os.Getpid(), Address: d.address, Port: d.port,
		UptimeSeconds: time.Since(d.started).Seconds(), Version: version.Version,
		InstanceID: d.id, StartedAt: d.started, StateDir: d.cfg.StateDir, Workspace: d.cfg.Workspace,
	}
	if d.queue != nil {
		s.Queue = d.queue()
	}
	return s
}

func (d *daemon) handleControl(ctx context.Context, cmd string) (any, bool, error) {
	switch cmd {
	case "status":
		return d.status(), false, nil
	case "stop":
		d.log.Info("stop requested on the control socket")
		d.stop()
		return map[string]any{"pid": os.Getpid()}, true, nil
	}
	return nil, false, fmt.Errorf("unknown command %q", cmd)
}

// notifyReady tells a waiting `patchd start` that we serve, through the pipe
// it passed, so that it never has to guess from a port or a file.
func notifyReady(st Status, log *slog.Logger) {
	fd := os.Getenv(envReadyFD)
	if fd == "" {
		return
	}
	os.Unsetenv(envReadyFD)
	os.Unsetenv(envDetached)
	n, err := strconv.Atoi(fd)
	if err != nil {
		log.Warn("bad ready fd", "value", fd)
		return
	}
	f := os.NewFile(uintptr(n), "ready")
	defer f.Close()
	if err := writeJSONLine(f, st); err != nil {
		log.Warn("tell the starter we are ready", "err", err)
	}
}

// PrepareStateDir creates the state directory (0700) with a .gitignore of
// "*" so that it never ends up in the workspace's git history.
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	// The state dir usually lives in the workspace; keep it out of git.
	gi := filepath.Join(dir, ".gitignore")
	if _, err := os.Stat(gi); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(gi, []byte("*\n"), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", gi, err)
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
