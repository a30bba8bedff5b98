package notify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables systemd sets for a service of Type=notify (or
// notify-reload) and for WatchdogSec=.
const (
	EnvNotifySocket = "NOTIFY_SOCKET"
	EnvWatchdogUsec = "WATCHDOG_USEC"
	EnvWatchdogPID  = "WATCHDOG_PID"
)

// sendTimeout bounds one datagram: a unix datagram socket blocks the sender
// while the receiver's queue is full, and a stuck systemd must not stall a
// shutdown.
const sendTimeout = 2 * time.Second

// Systemd sends sd_notify messages to $NOTIFY_SOCKET (a unix datagram socket
// path; a leading '@' means the Linux abstract namespace). Enabled() is false
// when NOTIFY_SOCKET is unset, and then every method is a no-op. Safe for
// concurrent use: each message is its own datagram on its own connection,
// which also survives systemd re-creating the socket (daemon-reexec).
type Systemd struct {
	socket   string
	usec     string // WATCHDOG_USEC as read, handed on by HandoffEnv
	interval time.Duration
}

// NewSystemd reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once. It
// does not unset them: whether children may talk to systemd is the caller's
// decision (see UnsetSystemdEnv and HandoffEnv).
func NewSystemd() *Systemd {
	s := &Systemd{socket: os.Getenv(EnvNotifySocket)}
	if s.socket == "" {
		return s
	}
	s.usec = os.Getenv(EnvWatchdogUsec)
	s.interval = watchdogInterval(s.usec, os.Getenv(EnvWatchdogPID), os.Getpid())
	return s
}

// watchdogInterval is half the watchdog timeout, as sd_watchdog_enabled(3)
// recommends, so that one late ping does not get us killed. It is 0 when the
// watchdog is off or meant for another process: WATCHDOG_PID names the
// process systemd watches, and the variables may have leaked to a child.
func watchdogInterval(usec, pid string, self int) time.Duration {
	if usec == "" {
		return 0
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p != self {
			return 0
		}
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0
	}
	return time.Duration(u) * time.Microsecond / 2
}

// Enabled reports whether NOTIFY_SOCKET was set.
func (s *Systemd) Enabled() bool { return s.socket != "" }

// Ready tells systemd the service is up (Type=notify), with a status line
// for `systemctl status`, and names this process as the main one, which is
// what lets a process started by a zero-downtime restart take over.
func (s *Systemd) Ready(status string) error {
	var b strings.Builder
	b.WriteString("READY=1\n")
	if status != "" {
		b.WriteString("STATUS=" + oneLine(status) + "\n")
	}
	b.WriteString("MAINPID=" + strconv.Itoa(os.Getpid()))
	return s.send(b.String())
}

// Reloading tells systemd a reload has begun; send Ready when it is done.
// systemd 253 and later (Type=notify-reload) ignore RELOADING=1 without
// MONOTONIC_USEC, which is how they tell this reload from a stale message.
func (s *Systemd) Reloading() error {
	if !s.Enabled() {
		return nil
	}
	msg := "RELOADING=1"
	if usec, err := monotonicUsec(); err == nil {
		msg += "\nMONOTONIC_USEC=" + strconv.FormatUint(usec, 10)
	}
	return s.send(msg)
}

// Stopping tells systemd a graceful stop has begun, so that it neither
// restarts us nor counts the time left as a hang.
func (s *Systemd) Stopping() error { return s.send("STOPPING=1") }

// MainPID hands the service over to pid. The old process sends it during a
// zero-downtime restart so that systemd watches the new one and does not
// consider the service dead when the old one exits.
func (s *Systemd) MainPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("sd_notify: invalid MAINPID %d", pid)
	}
	return s.send("MAINPID=" + strconv.Itoa(pid))
}

// HandOver makes pid the main process and ends the reload begun with
// Reloading, in one datagram, so that systemd never sees a moment with the
// new process ready but not yet main.
func (s *Systemd) HandOver(pid int, status string) error {
	if pid <= 0 {
		return fmt.Errorf("sd_notify: invalid MAINPID %d", pid)
	}
	return s.send("MAINPID=" + strconv.Itoa(pid) + "\nREADY=1\nSTATUS=" + oneLine(status))
}

// Status sets the free-form status line shown by `systemctl status`.
func (s *Systemd) Status(text string) error { return s.send("STATUS=" + oneLine(text)) }

// WatchdogInterval is how often to ping: half of WATCHDOG_USEC, or 0 when
// NOTIFY_SOCKET is unset, the watchdog is off, or WATCHDOG_PID names another
// process.
func (s *Systemd) WatchdogInterval() time.Duration { return s.interval }

// Watchdog sends "WATCHDOG=1" every WatchdogInterval() until ctx is done,
// but only while alive() returns true (so a hung worker or server stops the
// pings and systemd restarts us). alive is called each tick, on this
// goroutine: an alive that itself hangs stops the pings too, which is the
// point. The first tick is immediate. Watchdog returns at once when the
// interval is 0; run it in its own goroutine.
func (s *Systemd) Watchdog(ctx context.Context, alive func() bool) {
	s.watchdog(ctx, alive, nil)
}

// watchdog is Watchdog with a hook for send errors, so the Notifier can log
// them without Watchdog's signature growing a logger.
func (s *Systemd) watchdog(ctx context.Context, alive func() bool, onErr func(error)) {
	if s.interval <= 0 {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if err := s.send("WATCHDOG=1"); err != nil && onErr != nil {
				onErr(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// HandoffEnv is the environment, as "KEY=value" entries, that a process
// replacing this one (zero-downtime restart) needs to notify systemd and
// keep the watchdog fed itself. WATCHDOG_PID is left out on purpose: it
// would name this process, and the new one would then never ping. The values
// are those NewSystemd read, so they survive UnsetSystemdEnv. Nil when
// NOTIFY_SOCKET was unset.
func (s *Systemd) HandoffEnv() []string {
	if !s.Enabled() {
		return nil
	}
	env := []string{EnvNotifySocket + "=" + s.socket}
	if s.usec != "" {
		env = append(env, EnvWatchdogUsec+"="+s.usec)
	}
	return env
}

// UnsetSystemdEnv removes systemd's notification variables from this
// process's environment, so children started afterwards cannot send
// messages that systemd would attribute to the service (with
// NotifyAccess=all it believes any process in the unit).
func UnsetSystemdEnv() {
	for _, k := range []string{EnvNotifySocket, EnvWatchdogUsec, EnvWatchdogPID} {
		os.Unsetenv(k)
	}
}

// send writes one datagram. systemd reads it as newline-separated
// assignments, so callers keep free text on one line (oneLine).
func (s *Systemd) send(msg string) error {
	if !s.Enabled() {
		return nil
	}
	// "vsock:" and other transports of newer systemd are for VMs and
	// containers talking to a host manager; a daemon on the host never
	// sees them.
	if s.socket[0] != '/' && s.socket[0] != '@' {
		return fmt.Errorf("sd_notify: unsupported %s %q", EnvNotifySocket, s.socket)
	}
	// Go maps a leading '@' to the abstract namespace on Linux, which is
	// exactly the sd_notify convention.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", s.socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", firstLine(msg), err)
	}
	return nil
}

// oneLine keeps text from adding assignments of its own: a status built
// from, say, a patch description must not be able to say "\nMAINPID=1".
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
