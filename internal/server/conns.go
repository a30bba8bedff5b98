package server

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Conns follows the server's connections: the state of each and since
// when. Serve on the listener its Listener method wraps, and set its
// ConnState method as the http.Server's ConnState hook.
type Conns struct {
	mu    sync.Mutex
	conns map[net.Conn]*connInfo
}

type connInfo struct {
	state http.ConnState
	since time.Time
	// readsAtIdle is the conn's read count when it went idle: more reads
	// since mean a request is arriving.
	readsAtIdle uint64
}

// NewConns returns an empty tracker.
func NewConns() *Conns {
	return &Conns{conns: map[net.Conn]*connInfo{}}
}

// Listener wraps ln so that the connections it accepts count their reads.
func (c *Conns) Listener(ln net.Listener) net.Listener {
	return &trackedListener{Listener: ln}
}

type trackedListener struct {
	net.Listener
}

func (l *trackedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: nc}, nil
}

// trackedConn counts the reads that returned data.
type trackedConn struct {
	net.Conn
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

// ConnState records a connection's new state (the http.Server hook).
func (c *Conns) ConnState(nc net.Conn, s http.ConnState) {
	now := time.Now()
	var reads uint64
	if tc, ok := nc.(*trackedConn); ok && s == http.StateIdle {
		reads = tc.reads.Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == http.StateClosed || s == http.StateHijacked {
		delete(c.conns, nc)
		return
	}
	if ci := c.conns[nc]; ci != nil {
		ci.state, ci.since, ci.readsAtIdle = s, now, reads
		return
	}
	c.conns[nc] = &connInfo{state: s, since: now, readsAtIdle: reads}
}

// Open counts the connections not yet closed.
func (c *Conns) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// waiting says whether a connection waits for a request and has none
// coming: idle between keep-alive requests, or new without a byte, with
// nothing read since and nothing in the socket's receive buffer. (A
// request that reaches the socket in the moment between this check and
// the close is the one HTTP/1.1 cannot save.)
func (ci *connInfo) waiting(nc net.Conn) bool {
	if ci.state != http.StateIdle && ci.state != http.StateNew {
		return false
	}
	tc, ok := nc.(*trackedConn)
	if !ok {
		return true
	}
	return tc.reads.Load() == ci.readsAtIdle && !pending(tc.Conn)
}

// CloseIdle closes the connections that have waited at least minIdle for
// a request and have none arriving, and returns how many.
func (c *Conns) CloseIdle(minIdle time.Duration) int {
	cutoff := time.Now().Add(-minIdle)
	n := 0
	c.mu.Lock()
	defer c.mu.Unlock()
	for nc, ci := range c.conns {
		if !ci.since.After(cutoff) && ci.waiting(nc) {
			nc.Close()
			// Closed now: the server's own StateClosed comes later.
			delete(c.conns, nc)
			n++
		}
	}
	return n
}
