package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The daemon's HTTP timeouts (internal/daemon/session.go), which end the
// attacks below.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
)

// attackConn is one hostile connection and when the server closed it.
type attackConn struct {
	net.Conn
	opened time.Time
	closed atomic.Int64 // UnixNano when the server closed it; 0 while open
}

// attack opens n connections to address, sends each the first bytes and
// watches for the server to close it.
func attack(t *testing.T, address string, n int, first func(i int) string) []*attackConn {
	t.Helper()
	conns := make([]*attackConn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", address, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i, n, err)
		}
		ac := &attackConn{Conn: c, opened: time.Now()}
		conns[i] = ac
		t.Cleanup(func() { c.Close() })
		if s := first(i); s != "" {
			if _, err := io.WriteString(c, s); err != nil {
				t.Fatalf("connection %d of %d: %v", i, n, err)
			}
		}
		go func() {
			// Whatever the server answers is read and dropped; the read
			// ends when the server closes the connection (EOF or reset).
			io.Copy(io.Discard, c)
			ac.closed.Store(time.Now().UnixNano())
		}()
	}
	return conns
}

// allClosed reports whether the server has closed every connection.
func allClosed(conns []*attackConn) bool {
	for _, c := range conns {
		if c.closed.Load() == 0 {
			return false
		}
	}
	return true
}

// checkClosedWithin checks that the server closed each connection at most
// limit after it was opened, and returns the longest it took.
func checkClosedWithin(t *testing.T, what string, conns []*attackConn, limit time.Duration) (shortest, longest time.Duration) {
	t.Helper()
	shortest = time.Hour
	for i, c := range conns {
		d := time.Unix(0, c.closed.Load()).Sub(c.opened)
		shortest, longest = min(shortest, d), max(longest, d)
		if d > limit {
			t.Errorf("%s %d: closed by the server after %s, want at most %s", what, i, d.Round(time.Millisecond), limit)
		}
	}
	return shortest, longest
}

// raiseFileLimit makes room for n more descriptors in the test process.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	rl.Cur = min(max(n, rl.Cur), rl.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < n {
		t.Skipf("needs %d file descriptors; the limit is %d (hard %d): %v", n, rl.Cur, rl.Max, err)
	}
}

// fileLimit reads a process's soft limit on open files.
func fileLimit(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			if len(f) >= 5 {
				if f[3] == "unlimited" {
					return 1 << 30, nil
				}
				return strconv.Atoi(f[3])
			}
		}
	}
	return 0, fmt.Errorf("no open files limit in /proc/%d/limits", pid)
}

func openFiles(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds)
}

// healthProbe GETs /health on a new connection every few milliseconds, as
// a monitor would, each with a one-second timeout, until stop is closed.
type healthProbe struct {
	probes, failed int
	slowest        time.Duration
	failures       []string
	done           chan struct{}
}

func probeHealth(address string, stop <-chan struct{}) *healthProbe {
	hp := &healthProbe{done: make(chan struct{})}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(hp.done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			start := time.Now()
			resp, err := c.Get("http://" + address + "/health")
			d := time.Since(start)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			hp.probes++
			hp.slowest = max(hp.slowest, d)
			if err != nil {
				hp.failed++
				if len(hp.failures) < 5 {
					hp.failures = append(hp.failures, fmt.Sprintf("after %s: %v", d.Round(time.Millisecond), err))
				}
			}
		}
	}()
	return hp
}

// TestHostileClients: while 200 slowloris connections trickle header
// bytes, 100 requests stall in their bodies and 1,000 connections sit idle
// without a byte, /health answers every probe within a second and a
// webhook POST is accepted. The server's timeouts end each attack:
// headers and idle connections after ReadHeaderTimeout, bodies after
// ReadTimeout. Afterwards the daemon is back to its goroutine and file
// counts.
func TestHostileClients(t *testing.T) {
	t.Parallel()
	const slowloris, stalled, idle = 200, 100, 1000
	raiseFileLimit(t, 4096)
	e := newEnv(t)
	for i := range 4 {
		os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("h%d.txt", i)), []byte("seed\n"), 0o644)
	}
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	addr := st.Address
	cl := e.client(addr)
	limit, err := fileLimit(pid)
	if err != nil {
		t.Fatal(err)
	}
	need := slowloris + stalled + idle + 100
	if limit < need {
		t.Skipf("the daemon may open %d files (RLIMIT_NOFILE); this test holds %d connections to it", limit, need)
	}
	_, h, err := getHealthAuth(addr, e.token())
	if err != nil {
		t.Fatal(err)
	}
	baseGoroutines := h["system"].(map[string]any)["goroutines"].(float64)
	baseFiles := openFiles(pid)

	post := func(id string) {
		t.Helper()
		code, body, err := cl.do("POST", "/webhook", seedBlock(id, id+".txt"))
		if err != nil || code != http.StatusAccepted {
			t.Errorf("POST %s during the attack = %d %s %v, want 202", id, code, body, err)
		}
	}

	stop := make(chan struct{})
	hp := probeHealth(addr, stop)
	begin := time.Now()

	// Slowloris: a request line, then one header byte per connection every
	// 100 ms, never the blank line that ends the headers.
	slow := attack(t, addr, slowloris, func(i int) string {
		return fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\nX-Slow-%d: ", addr, i)
	})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, c := range slow {
				if c.closed.Load() == 0 {
					c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
					c.Write([]byte{'a'})
				}
			}
		}
	}()
	// Bodies that never finish: 10 of the 1000 bytes announced. Half carry
	// the token, so the handler itself waits in its read.
	tok := e.token()
	bodies := attack(t, addr, stalled, func(i int) string {
		auth := ""
		if i%2 == 0 {
			auth = "Authorization: Bearer " + tok + "\r\n"
		}
		return fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":\"st", addr, auth)
	})
	post("h0")
	idlers := attack(t, addr, idle, func(int) string { return "" })
	t.Logf("%d connections open after %s; the daemon holds %d files (limit %d)",
		slowloris+stalled+idle, time.Since(begin).Round(time.Millisecond), openFiles(pid), limit)
	post("h1")

	margin := 3 * time.Second
	waitFor(t, readHeaderTimeout+margin+5*time.Second, "the server to close slowloris and idle connections", func() bool {
		return allClosed(slow) && allClosed(idlers)
	})
	post("h2")
	lo, hi := checkClosedWithin(t, "slowloris connection", slow, readHeaderTimeout+margin)
	t.Logf("slowloris connections closed by the server after %s to %s", lo.Round(time.Millisecond), hi.Round(time.Millisecond))
	lo, hi = checkClosedWithin(t, "idle connection", idlers, readHeaderTimeout+margin)
	t.Logf("idle connections closed by the server after %s to %s", lo.Round(time.Millisecond), hi.Round(time.Millisecond))
	// Our clock starts when Dial returns, a moment after the server's:
	// only a close well before the timeout is wrong.
	if lo < readHeaderTimeout/2 {
		t.Errorf("an idle connection was closed after %s, long before ReadHeaderTimeout (%s)", lo, readHeaderTimeout)
	}

	waitFor(t, readTimeout+margin+5*time.Second, "the server to close the stalled bodies", func() bool { return allClosed(bodies) })
	lo, hi = checkClosedWithin(t, "stalled body", bodies, readTimeout+margin)
	t.Logf("stalled bodies closed by the server after %s to %s", lo.Round(time.Millisecond), hi.Round(time.Millisecond))
	post("h3")
	close(stop)
	<-hp.done
	<-trickled

	t.Logf("%d health probes during %s of attack, slowest %s", hp.probes, time.Since(begin).Round(time.Millisecond), hp.slowest.Round(time.Millisecond))
	if hp.failed > 0 {
		t.Errorf("%d of %d health probes failed (one-second timeout); first: %s", hp.failed, hp.probes, strings.Join(hp.failures, "; "))
	}
	if hp.probes < 100 {
		t.Errorf("only %d health probes ran", hp.probes)
	}

	// Nothing of the attack stays behind in the daemon.
	var goroutines float64
	waitFor(t, 10*time.Second, "the daemon's goroutines and files to return to their count before the attack", func() bool {
		_, h, err := getHealthAuth(addr, e.token())
		if err != nil {
			return false
		}
		goroutines = h["system"].(map[string]any)["goroutines"].(float64)
		return goroutines <= baseGoroutines+5 && openFiles(pid) <= baseFiles+5
	})
	t.Logf("daemon goroutines %v (before %v), files %d (before %d)", goroutines, baseGoroutines, openFiles(pid), baseFiles)
	for i := range 4 {
		id := fmt.Sprintf("h%d", i)
		waitFor(t, 10*time.Second, id+" to be applied", func() bool {
			p, _ := cl.patch(t, id)
			return p.State == "applied"
		})
	}
}
