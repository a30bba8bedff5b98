package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
