package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/patchd/patchd/internal/listen"
)

// Environment variables of the parent-to-child handoffs: `patchd start`
// spawning the daemon, and a daemon restarting into a new binary. They are
// internal, not settings, and removed from the environment once read so
// that no grandchild inherits them by mistake.
const (
	envLockFD     = "PATCHD_INTERNAL_LOCK_FD"
	envReadyFD    = "PATCHD_INTERNAL_READY_FD"
	envDetached   = "PATCHD_INTERNAL_DETACHED"
	envListenFDs  = "PATCHD_INTERNAL_LISTEN_FDS"
	envHandoverFD = "PATCHD_INTERNAL_HANDOVER_FD"
	envStderrFD   = "PATCHD_INTERNAL_STDERR_FD"
)

// inheritance is what a parent process handed to this one.
type inheritance struct {
	spawned   bool                    // started by patchd itself: nobody else tracks our pid
	detached  bool                    // by `patchd start`: no console, output goes to the log
	lock      *os.File                // the instance lock, already held
	listeners map[string]net.Listener // "http" and "control", from a restart
	handover  net.Conn                // to the daemon that is restarting into us
	stderr    *os.File                // our real stderr, while the restarting daemon reads our output
	ready     *os.File                // `patchd start` waits for our status here
	activated net.Listener            // the HTTP socket from systemd socket activation
}

// takeInheritance reads and clears the handoff variables.
func takeInheritance() (inheritance, error) {
	var inh inheritance
	get := func(name string) string {
		v := os.Getenv(name)
		os.Unsetenv(name)
		return v
	}
	fdFile := func(name, what string) (*os.File, error) {
		v := get(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 {
			return nil, fmt.Errorf("%s=%q: not a file descriptor", name, v)
		}
		inh.spawned = true
		return os.NewFile(uintptr(n), what), nil
	}
	var err error
	inh.detached = get(envDetached) != ""
	inh.spawned = inh.detached
	if inh.lock, err = fdFile(envLockFD, "patchd.lock"); err != nil {
		return inh, err
	}
	if inh.ready, err = fdFile(envReadyFD, "ready"); err != nil {
		return inh, err
	}
	if spec := get(envListenFDs); spec != "" {
		inh.spawned = true
		if inh.listeners, err = listen.Inherited(spec); err != nil {
			return inh, err
		}
	}
	named, err := listen.Systemd()
	if err != nil {
		return inh, fmt.Errorf("systemd socket activation: %w", err)
	}
	for _, n := range named {
		switch {
		case inh.activated == nil && (n.Name == "http" || n.Name == "unknown" || len(named) == 1):
			inh.activated = n.Listener
		default:
			n.Listener.Close()
		}
	}
	if inh.stderr, err = fdFile(envStderrFD, "stderr"); err != nil {
		return inh, err
	}
	hf, err := fdFile(envHandoverFD, "handover")
	if err != nil {
		return inh, err
	}
	if hf != nil {
		c, err := net.FileConn(hf)
		hf.Close()
		if err != nil {
			return inh, fmt.Errorf("handover socket: %w", err)
		}
		inh.handover = c
	}
	return inh, nil
}

// childEnv is our environment for a spawned daemon: without any handoff
// variables of our own, without the PM2 channel (PM2 talks to the process it
// started, which stays us), and without WATCHDOG_PID, which names us.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "PATCHD_INTERNAL_"),
			name == "NODE_CHANNEL_FD", name == "NODE_CHANNEL_SERIALIZATION_MODE", name == "WATCHDOG_PID":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
