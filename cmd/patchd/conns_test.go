package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keepAlive opens a connection, makes one request on it and leaves it open
// and idle, as an HTTP client's connection pool does.
func keepAlive(t *testing.T, address string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", address)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("keep-alive request: %v", err)
	}
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server asked to close the keep-alive connection")
	}
	return c
}

// closedAt returns a channel that gets the time the server closed c.
func closedAt(c net.Conn) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				ch <- time.Now()
				return
			}
		}
	}()
	return ch
}

// TestRestartClosesIdleAtOnce: during `patchd restart` the old daemon
// closes idle keep-alive connections at once, instead of waiting for them
// (connections made meanwhile wait in the backlog until the handover is
// done), while a request in flight is still answered.
func TestRestartClosesIdleAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("a\n"), 0o644)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	idle := keepAlive(t, st.Address)
	defer idle.Close()
	idleClosed := closedAt(idle)
	inflight, finish := e.halfRequest(st.Address, `{"id":"r1","role":"r","target_file":"a.txt","patch":{"pattern":"a","replacement":"b"}}`)
	defer inflight.Close()

	restarted := make(chan result, 1)
	go func() { restarted <- e.run("restart") }()
	logPath := filepath.Join(e.stateDir(), "logs", "patchd.log")
	var draining time.Time
	waitFor(t, 20*time.Second, "the old daemon to start draining", func() bool {
		data, _ := os.ReadFile(logPath)
		if bytes.Contains(data, []byte("the new daemon is prepared; draining")) {
			draining = time.Now()
			return true
		}
		return false
	})
	var closed time.Time
	select {
	case closed = <-idleClosed:
	case <-time.After(20 * time.Second):
		t.Fatal("the idle keep-alive connection was never closed")
	}
	if d := closed.Sub(draining); d > time.Second {
		t.Errorf("the idle keep-alive connection was closed %s after the drain began, want at once", d.Round(time.Millisecond))
	}
	answer, err := finish()
	if err != nil || !strings.HasPrefix(answer, "HTTP/1.1 202") || !strings.Contains(answer, "Connection: close") {
		t.Errorf("the request in flight during the restart got %q, %v; want 202 with Connection: close", answer, err)
	}
	if r := <-restarted; r.code != 0 {
		t.Errorf("restart: %s", r)
	}
}

// runLimited starts `patchd run` with its file limit (soft and hard) set
// to nofile, as a small ulimit or a container would.
func (e *tenv) runLimited(nofile int, args ...string) (*exec.Cmd, *syncBuffer) {
	e.t.Helper()
	cmd := e.command(append([]string{"run", "--port", "0"}, args...)...)
	cmd.Args = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)}, cmd.Args...)
	cmd.Path = "/bin/sh"
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, buf
}

// flood opens n connections from the local address from (nil: any), each
// sending one request and then staying open and idle, without reading.
func flood(t *testing.T, address string, from net.IP, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := d.Dial("tcp", address)
		if err != nil {
			t.Fatalf("dial %s after %d connections: %v", address, len(conns), err)
		}
		conns = append(conns, c)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "GET /ready HTTP/1.1\r\nHost: %s\r\n\r\n", address)
	}
	return conns
}

// settle is how long stillOpen gives the server to close connections. A
// connection the kernel completed but the daemon has not accepted yet is
// still open to the client; on a loaded machine the daemon may take
// seconds to drain its accept queue, and only then closes the excess.
const settle = 5 * time.Second

// stillOpen counts the connections the server has not closed, waiting up
// to wait for it to close them.
func stillOpen(conns []net.Conn, wait time.Duration) int {
	return len(openAfter(conns, wait))
}

// openAfter returns the connections the server has not closed within
// wait: a read ended by the deadline, not by the server's close.
func openAfter(conns []net.Conn, wait time.Duration) []net.Conn {
	var mu sync.Mutex
	var open []net.Conn
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			if _, err := io.Copy(io.Discard, c); err != nil {
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return open
}

// openOver polls, for at most total, until no more than max of conns
// are open, and returns how many are: on a loaded machine the daemon
// may still be accepting (and closing) the flood's last connections
// when a fixed wait ends, which counted queued connections as kept.
func openOver(conns []net.Conn, max int, total time.Duration) int {
	end := time.Now().Add(total)
	open := openAfter(conns, settle)
	for len(open) > max && time.Now().Before(end) {
		open = openAfter(open, time.Second)
	}
	return len(open)
}

// freshHealth GETs /health on a new connection from from (nil: any) and
// returns how long the answer took. Its connection waits in the accept
// queue behind any flood, hence the generous timeout.
func freshHealth(t *testing.T, address string, from net.IP) (time.Duration, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}}
	start := time.Now()
	resp, err := c.Get("http://" + address + "/health")
	if err != nil {
		return time.Since(start), err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Since(start), fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// TestConnectionsCappedBelowFileLimit: a daemon whose file limit is 512
// keeps its connections below it, whatever the clients do: 1,000 idle
// keep-alive connections from one address leave it able to accept, so
// /health answers a fresh connection at once; the oldest idle connections
// are closed to make room, and the daemon never runs out of files.
func TestConnectionsCappedBelowFileLimit(t *testing.T) {
	t.Parallel()
	const nofile, n = 512, 1000
	raiseFileLimit(t, n+200)
	e := newEnv(t)
	cmd, out := e.runLimited(nofile)
	st := e.waitRunning(20 * time.Second)
	pid := cmd.Process.Pid
	if limit, err := fileLimit(pid); err != nil || limit != nofile {
		t.Fatalf("the daemon's file limit is %d (%v), want %d", limit, err, nofile)
	}
	conns := flood(t, st.Address, nil, n)
	for i := range 5 {
		if d, err := freshHealth(t, st.Address, nil); err != nil {
			t.Fatalf("GET /health #%d on a fresh connection after %d idle ones: %v after %s\n%s", i, n, err, d.Round(time.Millisecond), out)
		}
	}
	if files := openFiles(pid); files >= nofile {
		t.Errorf("the daemon holds %d files, its limit is %d", files, nofile)
	}
	open := stillOpen(conns, settle)
	t.Logf("%d of %d idle connections still open; the daemon holds %d files", open, n, openFiles(pid))
	if open > nofile/2 {
		t.Errorf("%d idle connections from one address kept open under a file limit of %d, want at most %d", open, nofile, nofile/2)
	}

	// A limit the file limit cannot hold is refused, naming both.
	e2 := newEnv(t)
	cmd2, out2 := e2.runLimited(nofile, "--max-conns", "1000")
	if code := exitCode(t, cmd2, 20*time.Second); code == 0 || !strings.Contains(out2.String(), "--max-conns 1000") || !strings.Contains(out2.String(), "RLIMIT_NOFILE") {
		t.Errorf("run --max-conns 1000 under a file limit of %d: exit %d, %s; want a refusal naming the flag and the limit", nofile, code, out2)
	}
}

// TestConnectionsPerClient: one address cannot take more than
// --max-conns-per-client connections; others (and /health from them) are
// not affected, and the same address gets a new connection in by closing
// its own oldest idle one.
func TestConnectionsPerClient(t *testing.T) {
	t.Parallel()
	const n = 600
	raiseFileLimit(t, 2*n+200)
	e := newEnv(t)
	_, r := e.start("--max-conns", "400", "--max-conns-per-client", "150")
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	other := net.IPv4(127, 0, 0, 2)
	conns := flood(t, st.Address, other, n)
	if d, err := freshHealth(t, st.Address, nil); err != nil {
		t.Errorf("GET /health from 127.0.0.1 while 127.0.0.2 floods: %v after %s", err, d)
	}
	if d, err := freshHealth(t, st.Address, other); err != nil {
		t.Errorf("GET /health from the flooding address on a fresh connection: %v after %s", err, d)
	}
	open := openOver(conns, 150, 30*time.Second)
	t.Logf("%d of %d connections from 127.0.0.2 still open", open, n)
	if open > 150 {
		t.Errorf("%d connections from 127.0.0.2 still open, want at most 150 (--max-conns-per-client)", open)
	}
	if r := e.run("status", "--max-conns", "-1"); r.code != 2 || !strings.Contains(r.stderr, "--max-conns") {
		t.Errorf("--max-conns -1: %s, want exit 2 naming the flag", r)
	}
}
