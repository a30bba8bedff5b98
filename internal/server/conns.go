package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// ConnLimits caps the connections a server holds open, so that no client
// can take the file descriptors the daemon needs, nor every place.
type ConnLimits struct {
	// Max is the most connections open at once; 0 = no limit.
	Max int
	// PerClient is the most from one client address; 0 = no limit.
	PerClient int
	// Logger receives the (rate-limited) lines about refused and closed
	// connections; nil: none.
	Logger *slog.Logger
}

// Under pressure (more than half of Max open), connections that have
// waited pressureIdle for a request are closed, looked for at most every
// sweepEvery; refusingAtOnce bounds the goroutines answering refused
// connections.
const (
	pressureIdle   = time.Second
	sweepEvery     = 100 * time.Millisecond
	refusingAtOnce = 64
)

// Conns follows and limits the server's connections. Serve on the
// listener its Listener method wraps, and set its ConnState method as the
// http.Server's ConnState hook.
//
// A new connection over a limit closes the oldest connection that waits
// for a request (idle between keep-alive requests, or new and silent)
// from the same address, or from any for the total limit, so that a
// client making a request, /health included, always gets in while
// connections merely sit. Only when every connection is busy with a
// request is a new one refused, with 503.
type Conns struct {
	limits   ConnLimits
	log      *refusalLog
	refusing chan struct{}

	mu        sync.Mutex
	conns     map[net.Conn]*connInfo
	perAddr   map[string]int
	lastSweep time.Time
}

type connInfo struct {
	state http.ConnState
	since time.Time
	addr  string
	// readsAtIdle is the conn's read count when it went idle: more reads
	// since mean a request is arriving.
	readsAtIdle uint64
}

// NewConns returns a tracker that enforces limits.
func NewConns(limits ConnLimits) *Conns {
	if limits.Logger == nil {
		limits.Logger = slog.New(slog.DiscardHandler)
	}
	return &Conns{
		limits:   limits,
		log:      newRefusalLog(limits.Logger),
		refusing: make(chan struct{}, refusingAtOnce),
		conns:    map[net.Conn]*connInfo{},
		perAddr:  map[string]int{},
	}
}

// Listener wraps ln: the connections it accepts are admitted within the
// limits and count their reads.
func (c *Conns) Listener(ln net.Listener) net.Listener {
	return &trackedListener{Listener: ln, conns: c}
}

type trackedListener struct {
	net.Listener
	conns *Conns
}

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: nc, addr: clientAddr(nc)}
		if reason := l.conns.admit(tc); reason != "" {
			l.conns.refuse(tc, reason)
			continue
		}
		return tc, nil
	}
}

// clientAddr is the address the per-client limit counts by.
func clientAddr(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return nc.RemoteAddr().String()
}

// trackedConn counts the reads that returned data.
type trackedConn struct {
	net.Conn
	addr  string
	reads atomic.Uint64
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

// CloseWrite lets net/http half-close before closing, as it does for a
// bare TCP connection, so that a client's unread request is not reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// admit records a new connection, making room within the limits by
// closing the oldest waiting one. It returns why not when there is none.
func (c *Conns) admit(tc *trackedConn) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	lim := c.limits
	if lim.Max > 0 && len(c.conns) > lim.Max/2 && now.Sub(c.lastSweep) >= sweepEvery {
		c.lastSweep = now
		if n := c.closeWaitingLocked(now.Add(-pressureIdle)); n > 0 {
			c.log.note("closed connections idle for a second under pressure", "closed", n, "open", len(c.conns), "limit", lim.Max)
		}
	}
	if lim.PerClient > 0 && c.perAddr[tc.addr] >= lim.PerClient && !c.evictLocked(tc.addr) {
		return fmt.Sprintf("too many connections from %s: %d are open and busy, the limit is %d per client address (--max-conns-per-client)",
			tc.addr, c.perAddr[tc.addr], lim.PerClient)
	}
	if lim.Max > 0 && len(c.conns) >= lim.Max && !c.evictLocked("") {
		return fmt.Sprintf("too many connections: %d are open and busy, the limit is %d (--max-conns)", len(c.conns), lim.Max)
	}
	c.conns[tc] = &connInfo{state: http.StateNew, since: now, addr: tc.addr}
	c.perAddr[tc.addr]++
	return ""
}

// evictLocked closes the oldest connection waiting for a request, from
// addr ("" = any), to admit a new one.
func (c *Conns) evictLocked(addr string) bool {
	tried := map[net.Conn]bool{}
	for range 4 {
		var oldest net.Conn
		var oi *connInfo
		for nc, ci := range c.conns {
			if (addr == "" || ci.addr == addr) && !tried[nc] && ci.idle(nc) && (oi == nil || ci.since.Before(oi.since)) {
				oldest, oi = nc, ci
			}
		}
		if oldest == nil {
			return false
		}
		if tc, ok := oldest.(*trackedConn); ok && pending(tc.Conn) {
			tried[oldest] = true
			continue
		}
		c.log.note("closed the oldest idle connection to admit a new one", "client", oi.addr,
			"idle", time.Since(oi.since).Round(time.Millisecond).String(), "open", len(c.conns))
		oldest.Close()
		c.removeLocked(oldest, oi)
		return true
	}
	return false
}

// refuse answers a connection over the limits with 503 and closes it, in
// the background and bounded: past refusingAtOnce it just closes.
func (c *Conns) refuse(tc *trackedConn, reason string) {
	c.log.refused(http.StatusServiceUnavailable, tc.RemoteAddr().String(), "", "", reason)
	select {
	case c.refusing <- struct{}{}:
	default:
		tc.Conn.Close()
		return
	}
	go func() {
		defer func() { <-c.refusing }()
		body := fmt.Sprintf(`{"status":"error","result":{"success":false,"error":%q,"code":%q}}`+"\n", reason, api.CodeTooManyConnections)
		tc.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(tc.Conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		tc.CloseWrite()
		// Read what the client sent, so that closing does not reset the
		// connection before it reads the answer.
		buf := make([]byte, 4096)
		for {
			if _, err := tc.Conn.Read(buf); err != nil {
				break
			}
		}
		tc.Conn.Close()
	}()
}

// ConnState records a connection's new state (the http.Server hook).
func (c *Conns) ConnState(nc net.Conn, s http.ConnState) {
	now := time.Now()
	var reads uint64
	if tc, ok := nc.(*trackedConn); ok && s == http.StateIdle {
		reads = tc.reads.Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ci := c.conns[nc]
	if s == http.StateClosed || s == http.StateHijacked {
		if ci != nil {
			c.removeLocked(nc, ci)
		}
		return
	}
	if ci != nil {
		ci.state, ci.since, ci.readsAtIdle = s, now, reads
		return
	}
	// Not from our listener (or already closed by us): follow it anyway.
	addr := ""
	if tc, ok := nc.(*trackedConn); ok {
		addr = tc.addr
	}
	c.conns[nc] = &connInfo{state: s, since: now, addr: addr, readsAtIdle: reads}
	c.perAddr[addr]++
}

func (c *Conns) removeLocked(nc net.Conn, ci *connInfo) {
	delete(c.conns, nc)
	if c.perAddr[ci.addr]--; c.perAddr[ci.addr] <= 0 {
		delete(c.perAddr, ci.addr)
	}
}

// Open counts the connections not yet closed.
func (c *Conns) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// idle says whether a connection waits for a request with none read yet:
// idle between keep-alive requests, or new without a byte.
func (ci *connInfo) idle(nc net.Conn) bool {
	if ci.state != http.StateIdle && ci.state != http.StateNew {
		return false
	}
	tc, ok := nc.(*trackedConn)
	return !ok || tc.reads.Load() == ci.readsAtIdle
}

// waiting is idle, and also nothing in the socket's receive buffer: no
// request on its way in. (A request that reaches the socket in the moment
// between this check and the close is the one HTTP/1.1 cannot save.)
func (ci *connInfo) waiting(nc net.Conn) bool {
	if !ci.idle(nc) {
		return false
	}
	tc, ok := nc.(*trackedConn)
	return !ok || !pending(tc.Conn)
}

// CloseIdle closes the connections that have waited at least minIdle for
// a request and have none arriving, and returns how many.
func (c *Conns) CloseIdle(minIdle time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeWaitingLocked(time.Now().Add(-minIdle))
}

func (c *Conns) closeWaitingLocked(cutoff time.Time) int {
	n := 0
	for nc, ci := range c.conns {
		if !ci.since.After(cutoff) && ci.waiting(nc) {
			nc.Close()
			// Closed now: the server's own StateClosed comes later.
			c.removeLocked(nc, ci)
			n++
		}
	}
	return n
}
