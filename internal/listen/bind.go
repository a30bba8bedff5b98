// Package listen opens the daemon's listening sockets: it binds the first
// free port of a list, and it adopts sockets handed down by systemd socket
// activation or by a previous patchd during a zero-downtime restart.
//
// A port is free when bind succeeds, never because lsof or a connect said
// so: any check made before the bind can be stale by the time of the bind,
// so this package only ever binds and reports what the bind said.
package listen

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Busy records a port that could not be bound and why.
type Busy struct {
	// Port is the port that was tried.
	Port int
	// Holder describes the process listening on Port, such as
	// "pid 812 (python3)", or is empty when the system cannot tell or the
	// failure was not "address in use".
	Holder string
	// Err is the error from the bind.
	Err error
}

// InUse reports whether the port failed because another socket holds it,
// as opposed to, say, a privileged port or an address not on this machine.
func (b Busy) InUse() bool {
	return errors.Is(b.Err, syscall.EADDRINUSE)
}

// String describes the failure in the words used by NoPortError.
func (b Busy) String() string {
	if b.InUse() {
		if b.Holder != "" {
			return fmt.Sprintf("%d in use by %s", b.Port, b.Holder)
		}
		return fmt.Sprintf("%d in use (holder unknown)", b.Port)
	}
	// The errno alone ("permission denied") reads better in a list than
	// the full "listen tcp 127.0.0.1:80: bind: permission denied".
	var errno syscall.Errno
	if errors.As(b.Err, &errno) {
		return fmt.Sprintf("%d not bindable: %v", b.Port, errno)
	}
	return fmt.Sprintf("%d not bindable: %v", b.Port, b.Err)
}

// NoPortError is returned by Bind when every port failed.
type NoPortError struct {
	// Host is the host Bind was asked to bind on; empty means all
	// addresses.
	Host string
	// Tried lists each port tried, in order, with its failure.
	Tried []Busy
}

// Error names every port tried and why it failed, for example
// "no port available on 127.0.0.1: 5555 in use by pid 812 (python3); 5566 in use (holder unknown)".
func (e *NoPortError) Error() string {
	host := e.Host
	if host == "" {
		host = "all addresses"
	}
	parts := make([]string, len(e.Tried))
	for i, b := range e.Tried {
		parts[i] = b.String()
	}
	return fmt.Sprintf("no port available on %s: %s", host, strings.Join(parts, "; "))
}

// Unwrap returns the bind error of each port, so that
// errors.Is(err, syscall.EADDRINUSE) holds when any port was in use.
func (e *NoPortError) Unwrap() []error {
	errs := make([]error, len(e.Tried))
	for i, b := range e.Tried {
		errs[i] = b.Err
	}
	return errs
}

// Bind tries host:port for each port in order (the main --port, then each
// fallback) and returns a TCP listener on the first one that binds. Port 0
// means any free port. An empty host means all addresses; a bracketed IPv6
// host such as "[::1]" is accepted.
//
// Each port that fails is logged at Warn (log may be nil) and returned in
// the Busy list, also on success, so the caller can tell the user that it
// fell back. When every port fails, the error is a *NoPortError. A host that
// cannot be resolved, or a port outside 0–65535, fails at once with a plain
// error, because no other port would fare better.
func Bind(host string, ports []int, log *slog.Logger) (net.Listener, []Busy, error) {
	if len(ports) == 0 {
		return nil, nil, errors.New("bind: no ports to try")
	}
	for _, p := range ports {
		if p < 0 || p > 65535 {
			return nil, nil, fmt.Errorf("bind: invalid port %d", p)
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}

	var busy []Busy
	seen := make(map[int]bool, len(ports))
	for _, p := range ports {
		// A fallback equal to an earlier port would only fail the same
		// way again and clutter the report. Port 0 can succeed where an
		// earlier 0 failed only by luck, so it is not worth a retry either.
		if seen[p] {
			continue
		}
		seen[p] = true

		addr := net.JoinHostPort(host, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l, busy, nil
		}
		var dnsErr *net.DNSError
		var addrErr *net.AddrError
		if errors.As(err, &dnsErr) || errors.As(err, &addrErr) {
			return nil, busy, fmt.Errorf("bind %s: %w", addr, err)
		}

		b := Busy{Port: p, Err: err}
		if b.InUse() {
			b.Holder = PortHolder(p)
			if log != nil {
				attrs := []any{"host", host, "port", p}
				if b.Holder != "" {
					attrs = append(attrs, "holder", b.Holder)
				}
				log.Warn("port busy", attrs...)
			}
		} else if log != nil {
			log.Warn("port unavailable", "host", host, "port", p, "err", err)
		}
		busy = append(busy, b)
	}
	return nil, busy, &NoPortError{Host: host, Tried: busy}
}
