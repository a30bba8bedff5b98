package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listenFDsStart is the first fd passed by systemd socket activation; 0–2
// stay stdin, stdout and stderr.
const listenFDsStart = 3

// Named is a listener inherited from systemd together with its name.
type Named struct {
	// Name comes from LISTEN_FDNAMES (FileDescriptorName= in the socket
	// unit); it is "unknown" when systemd passed no name, as in libsystemd.
	Name string
	// Listener accepts on the inherited socket.
	Listener net.Listener
}

// Systemd returns the listeners passed by systemd socket activation, in fd
// order, or (nil, nil) when the process was not socket-activated.
//
// The environment is for this process only when LISTEN_PID is its own pid;
// LISTEN_FDS then counts the fds from 3 on, and LISTEN_FDNAMES optionally
// names them, colon-separated. Systemd unsets LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES in every case, and marks the fds close-on-exec, so that
// children neither inherit the sockets nor mistake the variables for their
// own. Each fd must be a listening stream socket (TCP or Unix). On error,
// the listeners already built are closed and the remaining fds are left
// open.
func Systemd() ([]Named, error) {
	pidStr, activated := os.LookupEnv("LISTEN_PID")
	fdsStr := os.Getenv("LISTEN_FDS")
	namesStr, hasNames := os.LookupEnv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}

	if !activated {
		return nil, nil
	}
	// A LISTEN_PID of another process means the variables leaked from a
	// parent that was activated; the fds they describe are not ours.
	if pid, err := strconv.Atoi(pidStr); err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("systemd activation: bad LISTEN_FDS %q", fdsStr)
	}
	if n == 0 {
		return nil, nil
	}
	var names []string
	if hasNames {
		names = strings.Split(namesStr, ":")
		if len(names) != n {
			return nil, fmt.Errorf("systemd activation: LISTEN_FDNAMES %q has %d names for %d fds", namesStr, len(names), n)
		}
	}

	var out []Named
	for i := range n {
		fd := listenFDsStart + i
		name := "unknown"
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		l, err := adopt(fd)
		if err != nil {
			for _, nl := range out {
				nl.Listener.Close()
			}
			return nil, fmt.Errorf("systemd activation: fd %d (%s): %w", fd, name, err)
		}
		out = append(out, Named{Name: name, Listener: l})
	}
	return out, nil
}

// File returns a duplicate of the listener's socket for handing to a child,
// typically in exec.Cmd.ExtraFiles, so that the child can serve on the same
// port without a moment when nobody listens. The caller closes the file once
// the child has started; the listener itself stays open.
func File(l net.Listener) (*os.File, error) {
	fl, ok := l.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("file of %T listener: not supported", l)
	}
	f, err := fl.File()
	if err != nil {
		return nil, fmt.Errorf("file of listener %s: %w", l.Addr(), err)
	}
	return f, nil
}

// Inherited builds listeners from the fds named in spec, such as
// "http=3,control=4": the protocol by which a restarting patchd hands its
// sockets to its successor. An empty spec returns (nil, nil). Inherited
// leaves the environment alone, since where the spec came from is the
// caller's business.
//
// The whole spec is checked before any fd is touched. Each fd must be a
// listening stream socket; it is marked close-on-exec and owned by the
// returned listener from then on. On error, the listeners already built are
// closed and the remaining fds are left open.
func Inherited(spec string) (map[string]net.Listener, error) {
	type entry struct {
		name string
		fd   int
	}
	var entries []entry
	names := make(map[string]bool)
	fds := make(map[int]bool)
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, fdStr, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("inherited listeners %q: %q is not name=fd", spec, item)
		}
		fd, err := strconv.Atoi(strings.TrimSpace(fdStr))
		if err != nil {
			return nil, fmt.Errorf("inherited listeners %q: %q: fd is not a number", spec, item)
		}
		// Taking over 0–2 would steal stdin, stdout or stderr, which no
		// restart passes as a listener.
		if fd < listenFDsStart {
			return nil, fmt.Errorf("inherited listeners %q: %q: fd below %d", spec, item, listenFDsStart)
		}
		if names[name] {
			return nil, fmt.Errorf("inherited listeners %q: name %q given twice", spec, name)
		}
		if fds[fd] {
			return nil, fmt.Errorf("inherited listeners %q: fd %d given twice", spec, fd)
		}
		names[name] = true
		fds[fd] = true
		entries = append(entries, entry{name, fd})
	}
	if len(entries) == 0 {
		return nil, nil
	}

	out := make(map[string]net.Listener, len(entries))
	for _, e := range entries {
		l, err := adopt(e.fd)
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("inherited listener %s (fd %d): %w", e.name, e.fd, err)
		}
		out[e.name] = l
	}
	return out, nil
}

// errNotListening is returned for an inherited fd that is a socket but not
// accepting connections, such as a UDP or connected TCP socket.
var errNotListening = errors.New("not a listening socket")
