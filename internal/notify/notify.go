// Package notify tells process supervisors what patchd is doing: systemd
// through the sd_notify protocol (readiness, reload, stop, main PID, the
// watchdog) and PM2 through the IPC channel it gives every app it forks
// (readiness for wait_ready, and its "shutdown" message).
//
// Supervisors that are absent cost nothing: each one is found through the
// environment it sets, and every method is a no-op without it. launchd has
// no such protocol; it learns everything from the process's lifetime and
// exit status.
//
// The variables are read once and not removed: the daemon decides which
// children may inherit them (UnsetSystemdEnv, UnsetPM2Env, CleanEnv, and
// Systemd.HandoffEnv for the process that replaces it on a restart).
package notify

import (
	"context"
	"log/slog"
	"slices"
	"strings"
)

// Notifier fans out to every supervisor present (systemd and/or PM2);
// methods are no-ops for absent ones. Safe for concurrent use. Errors are
// logged, never returned: a supervisor that cannot be told is no reason to
// stop serving.
type Notifier struct {
	log     *slog.Logger
	systemd *Systemd
	pm2     *PM2
}

// New finds the supervisors from the environment. It takes PM2's channel
// descriptor (see NewPM2), so call it once per process. A nil log discards.
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{log: log, systemd: NewSystemd(), pm2: NewPM2()}
	if n.systemd.Enabled() {
		log.Debug("systemd notification enabled", "socket", n.systemd.socket, "watchdog_interval", n.systemd.WatchdogInterval())
	}
	if n.pm2.Enabled() {
		log.Debug("pm2 ipc channel enabled")
	}
	if err := n.pm2.Err(); err != nil {
		log.Warn("pm2 ipc channel not used", "err", err)
	}
	return n
}

// Systemd is the systemd side, for what the Notifier does not fan out
// (HandoffEnv, Status).
func (n *Notifier) Systemd() *Systemd { return n.systemd }

// PM2 returns the PM2 part, disabled when PM2 did not start this process.
func (n *Notifier) PM2() *PM2 { return n.pm2 }

// Ready says the daemon serves: READY=1 with a status line for systemd,
// "ready" for PM2's wait_ready. Also call it when a reload is done.
func (n *Notifier) Ready(status string) {
	n.warn("systemd", "ready", n.systemd.Ready(status))
	n.warn("pm2", "ready", n.pm2.Ready())
}

// Reloading says a reload has begun (systemd only; PM2 has no such state).
func (n *Notifier) Reloading() {
	n.warn("systemd", "reloading", n.systemd.Reloading())
}

// Stopping says a graceful stop has begun (systemd only; PM2 learns it
// from the exit).
func (n *Notifier) Stopping() {
	n.warn("systemd", "stopping", n.systemd.Stopping())
}

// MainPID hands systemd's supervision to pid, the process that replaces
// this one on a zero-downtime restart. PM2 cannot follow such a handover:
// it watches the process it forked.
func (n *Notifier) MainPID(pid int) {
	n.warn("systemd", "mainpid", n.systemd.MainPID(pid))
}

// HandOver tells systemd that pid, which replaced this process in a
// zero-downtime restart, is the main process now and ready.
func (n *Notifier) HandOver(pid int, status string) {
	n.warn("systemd", "handover", n.systemd.HandOver(pid, status))
}

// Watchdog feeds systemd's watchdog until ctx is done, while alive()
// returns true; see Systemd.Watchdog. It returns at once when no watchdog
// is configured. A failed ping is logged at debug level: the next tick
// retries, and a lasting failure shows as a restart by systemd.
func (n *Notifier) Watchdog(ctx context.Context, alive func() bool) {
	n.systemd.watchdog(ctx, alive, func(err error) {
		n.log.Debug("systemd watchdog ping failed", "err", err)
	})
}

// ShutdownRequested is closed when a supervisor asks for a graceful stop by
// message rather than by signal (PM2 with shutdown_with_message). It never
// closes otherwise.
func (n *Notifier) ShutdownRequested() <-chan struct{} { return n.pm2.ShutdownRequested() }

// Close releases PM2's channel. Further PM2 messages are dropped and
// logged; systemd messages still go out.
func (n *Notifier) Close() {
	if err := n.pm2.Close(); err != nil {
		n.log.Debug("pm2 ipc close failed", "err", err)
	}
}

func (n *Notifier) warn(supervisor, what string, err error) {
	if err != nil {
		n.log.Warn("supervisor notification failed", "supervisor", supervisor, "message", what, "err", err)
	}
}

// CleanEnv returns env (as from os.Environ) without the variables of
// systemd's and PM2's notification protocols, for a child that must not
// talk to them as if it were the service. Unlike the Unset functions it
// leaves this process's environment alone, so it is safe while other
// goroutines read it.
func CleanEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case EnvNotifySocket, EnvWatchdogUsec, EnvWatchdogPID, EnvNodeChannelFD, EnvNodeChannelSerialization:
			return true
		}
		return false
	})
}
