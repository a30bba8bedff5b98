package daemon

import (
	"fmt"

	"github.com/patchd/patchd/internal/config"
)

// The file descriptors kept out of the connection limit (the journal, its
// blobs, the logs, the control socket, workspace files, checks' pipes), and
// the default limit where the file limit allows more.
const (
	connReserve    = 256
	connDefaultMax = 4096
)

// connLimits resolves --max-conns and --max-conns-per-client against the
// process's file limit: by default as many connections as the limit leaves
// after connReserve (half of it, for a limit below 512), at most
// connDefaultMax; an explicit --max-conns above that is refused. The
// per-client default is half of the total, so one address never takes
// every place.
func connLimits(cfg *config.Config) (maxConns, perClient int, err error) {
	nofile := fileLimit()
	room := connDefaultMax
	if nofile > 0 {
		room = nofile - min(connReserve, nofile/2)
	}
	maxConns = cfg.MaxConns
	switch {
	case maxConns == 0:
		maxConns = min(room, connDefaultMax)
	case nofile > 0 && maxConns > room:
		return 0, 0, fmt.Errorf("--max-conns %d: the file limit (RLIMIT_NOFILE) is %d and %d of it is kept for the journal, logs and workspace files, so at most %d; raise the limit (ulimit -n, LimitNOFILE=) or lower --max-conns",
			maxConns, nofile, nofile-room, room)
	}
	perClient = cfg.MaxConnsPerClient
	if perClient == 0 {
		perClient = max(1, maxConns/2)
	}
	return maxConns, min(perClient, maxConns), nil
}
