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
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/logging"
	"github.com/patchd/patchd/internal/notify"
)

// ErrAlreadyRunning is returned by Run with --if-running=exit when another
// instance holds the lock.
var ErrAlreadyRunning = errors.New("already running")

// ErrStoppedUnderPM2 is returned by Run when `patchd stop` stopped a process
// that PM2 started. PM2 reports a death by signal as exit code 0, so 0 must
// mean "restart me" to it; a stop on purpose needs a code of its own (one
// that the generated stop_exit_codes lists). Elsewhere such a stop is nil.
var ErrStoppedUnderPM2 = errors.New("stopped by `patchd stop`; exiting with the code that PM2 leaves stopped (`pm2 start` brings it back)")

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
	// Standbys counts the processes waiting to take over (a keeper left
	// by a restart included).
	Standbys int `json:"standbys"`
	// Notify is each notification receiver's outbox (--notify), its URL
	// redacted; nil without receivers.
	Notify []api.NotifyStatus `json:"notify,omitempty"`
	// NATS is the runner's link to NATS JetStream (--queue); nil without
	// a queue.
	NATS *api.NATSStatus `json:"nats,omitempty"`
}

// Run runs the daemon in the foreground until ctx is done or a stop arrives
// on the control socket. console receives text logs (nil: none).
//
// A process that handed its work to a successor (`patchd restart`) either
// exits or, when a supervisor tracks its pid (PM2, launchd, a terminal), stays
// as a keeper: a standby that takes over if the successor dies and stops it
// when the supervisor stops us. See the README's supervisor sections.
func Run(ctx context.Context, cfg *config.Config, console io.Writer) error {
	inh, err := takeInheritance()
	if err != nil {
		return err
	}
	if inh.detached {
		console = nil
	}
	log := logging.Console(console, cfg.LogLevel)
	if err := PrepareStateDir(cfg.StateDir); err != nil {
		return err
	}
	notifier := notify.New(log)
	defer notifier.Close()
	// Node's own children do not see PM2's channel variables either.
	notify.UnsetPM2Env()
	// systemd follows a restart through MAINPID; a process we spawned
	// ourselves is tracked by nobody. Anyone else tracks our pid.
	keeper := !inh.spawned && !notifier.Systemd().Enabled()
	// PM2 with shutdown_with_message asks by message rather than signal.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-notifier.ShutdownRequested():
			log.Info("the supervisor asked us to shut down")
			cancel()
		case <-ctx.Done():
		}
	}()

	var logFile *logging.File
	defer func() {
		if logFile != nil {
			logFile.Close()
		}
	}()
	// SIGHUP means "restart" in every state, never the default "die": the
	// active daemon restarts; a keeper asks the daemon it handed over to.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	keeping := false
	for {
		waiting := make(chan struct{})
		go relayHangups(hup, waiting, cfg, log, keeping)
		acq, err := acquire(ctx, cfg, log, inh, keeping, notifier)
		close(waiting)
		if acq.stopped {
			// The active daemon waits for this connection to close, which
			// is when we are gone.
			defer runtime.KeepAlive(acq.told)
			return stopped(notifier)
		}
		lock := acq.lock
		if err != nil || lock == nil {
			return err
		}
		if logFile == nil {
			if logFile, err = logging.OpenFile(cfg.LogPath(), cfg.LogMaxSizeMB, cfg.LogLevel); err != nil {
				lock.Release()
				return fmt.Errorf("open log %s: %w", cfg.LogPath(), err)
			}
			log = logFile.Tee(log)
		}
		s := &session{cfg: cfg, log: log, lock: lock, inh: inh, notifier: notifier, started: time.Now(), id: newID(), hup: hup}
		handedOver, err := s.run(ctx)
		lock.Release()
		inh = inheritance{spawned: inh.spawned, detached: inh.detached}
		if err == nil && !handedOver && s.stopCommanded.Load() {
			return stopped(notifier)
		}
		if err != nil || !handedOver {
			return err
		}
		if !keeper {
			log.Info("handed over to the new daemon; exiting")
			return nil
		}
		log.Info("handed over to the new daemon; staying as a keeper for the supervisor that tracks this pid")
		// Everything is released: the restart command may return now.
		s.handedTo.CloseHeld()
		keeping = true
	}
}

// acquired is the outcome of acquire: the lock, or the word that `patchd
// stop` stopped the instance while we stood by (told is then the control
// connection to keep open until we exit, or nil when we learned it from the
// stop marker), or neither when ctx ended while standing by.
type acquired struct {
	lock    *instance.Lock
	stopped bool
	told    net.Conn
}

// acquire takes the instance lock: inherited from `patchd start`, at once,
// or, as a standby, when the active instance goes.
func acquire(ctx context.Context, cfg *config.Config, log *slog.Logger, inh inheritance, keeping bool, n *notify.Notifier) (acquired, error) {
	if inh.lock != nil {
		lock, err := instance.FromFile(inh.lock)
		return acquired{lock: lock}, err
	}
	// Read before the lock is tried: a stop from now on is meant for us.
	mark, err := instance.StopMark(cfg.StopPath())
	if err != nil {
		return acquired{}, err
	}
	lock, err := instance.TryLock(cfg.LockPath())
	if !errors.Is(err, instance.ErrLocked) {
		return acquired{lock: lock}, err
	}
	holder := describeHolder(cfg)
	if cfg.IfRunning == "exit" && !keeping {
		return acquired{}, fmt.Errorf("%w: %s holds %s", ErrAlreadyRunning, holder, cfg.LockPath())
	}
	if !keeping {
		log.Info("standing by: another instance is active; taking over when it exits", "active", holder, "lock", cfg.LockPath())
		// A standby is up and doing its job. Telling the supervisor so
		// keeps systemd from timing the start out and PM2 from waiting.
		n.Ready("standby: " + holder + " is active")
	}
	// Registered with the active daemon, we are counted by `patchd
	// status` and told when `patchd stop` stops the instance.
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	regCtx, stopRegistering := context.WithCancel(context.Background())
	defer stopRegistering()
	var told net.Conn
	registered := make(chan struct{})
	go func() {
		defer close(registered)
		if told = standBy(regCtx, cfg, log); told != nil {
			stopWaiting()
		}
	}()
	lock, err = instance.Wait(waitCtx, cfg.LockPath())
	stopRegistering()
	<-registered
	if told != nil {
		lock.Release()
		log.Info("`patchd stop` stopped the instance; this standby exits")
		return acquired{stopped: true, told: told}, nil
	}
	if errors.Is(err, context.Canceled) {
		if keeping {
			// Our supervisor stops us: the daemon we handed over to is
			// ours to stop too, or `pm2 stop` would leave it running.
			stopActive(cfg, log)
			return acquired{}, nil
		}
		log.Info("standby stopped before taking over")
		return acquired{}, nil
	}
	if err != nil {
		return acquired{}, err
	}
	// A stop we were not told of (we were not registered yet): the marker.
	if now, err := instance.StopMark(cfg.StopPath()); err != nil || now != mark {
		lock.Release()
		if err != nil {
			return acquired{}, err
		}
		log.Info("`patchd stop` stopped the instance while this standby waited; it exits", "marker", cfg.StopPath())
		return acquired{stopped: true}, nil
	}
	log.Info("taking over as the active instance")
	return acquired{lock: lock}, nil
}

// standBy keeps this standby registered with the active daemon until ctx
// ends, registering again whenever the connection ends (the active daemon
// restarted, or died and another took over). It returns the connection on
// which the daemon said that the instance stops, or nil when ctx ended.
func standBy(ctx context.Context, cfg *config.Config, log *slog.Logger) net.Conn {
	const first, most = 10 * time.Millisecond, time.Second
	delay := first
	for {
		began := time.Now()
		c, err := control.Standby(ctx, cfg.ControlPath(), os.Getpid())
		if err == nil {
			return c
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > most {
			delay = first // it was registered a while: a new daemon, not a failing one
		}
		log.Debug("standby: registering with the active daemon", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, most)
	}
}

// describeHolder names the active instance as well as the state file can.
func describeHolder(cfg *config.Config) string {
	if st, err := instance.ReadState(cfg.StatePath()); err == nil && st.PID != 0 {
		return fmt.Sprintf("pid %d (%s)", st.PID, st.Address)
	}
	return "another process"
}

// PrepareStateDir creates the state directory (0700) with a .gitignore of
// "*" so that it never ends up in the workspace's git history. A state dir
// that another user could have written is refused (checkStateDir).
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	if err := checkStateDir(dir); err != nil {
		return err
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

// stopped is how Run ends after `patchd stop`: a clean exit, in a way the
// supervisor understands.
func stopped(n *notify.Notifier) error {
	if n.PM2().Enabled() {
		return ErrStoppedUnderPM2
	}
	return nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// stopActive stops the active instance through its control socket and waits
// for it to exit.
func stopActive(cfg *config.Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+10*time.Second)
	defer cancel()
	err := control.CallAndWait(ctx, cfg.ControlPath(), "stop", nil)
	if err != nil && !errors.Is(err, control.ErrNotRunning) && !errors.Is(err, control.ErrNoAnswer) {
		log.Warn("stop the daemon we handed over to", "err", err)
		return
	}
	log.Info("stopped the daemon we handed over to")
}

// relayHangups handles SIGHUP while this process waits for the lock: a
// keeper passes it on as a restart of the active daemon, a standby has
// nothing to restart.
func relayHangups(hup <-chan os.Signal, done <-chan struct{}, cfg *config.Config, log *slog.Logger, keeping bool) {
	for {
		select {
		case <-done:
			return
		case <-hup:
			if !keeping {
				log.Info("SIGHUP: standing by, nothing to restart")
				continue
			}
			log.Info("SIGHUP: asking the active daemon to restart")
			ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout+cfg.DrainTimeout+15*time.Second)
			err := control.Call(ctx, cfg.ControlPath(), "restart", nil)
			cancel()
			if err != nil {
				log.Warn("SIGHUP: restart of the active daemon failed", "err", err)
			}
		}
	}
}
