package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnRefusalShape: a connection refused because every one is busy is
// answered 503 in the seed's shape, with its code, like every refusal.
func TestConnRefusalShape(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := NewConns(ConnLimits{Max: 1})
	in, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{ConnState: conns.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-release
	})}
	go srv.Serve(conns.Listener(ln))
	defer srv.Close()
	busy := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		busy <- err
	}()
	<-in // the only connection allowed is busy with a request

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || a.Status != "error" || a.Result.Error == "" || a.Result.Code != "too_many_connections" {
		t.Errorf("refused connection = %d %+v, want 503 with code too_many_connections", resp.StatusCode, a)
	}
	close(release)
	<-busy
}

// TestConnsCloseIdleUnderPressure (issue 10, finding 10: shorten idle
// timeouts under pressure): while more than half of Max connections are
// open, a new connection closes every one that has waited pressureIdle
// for a request; at half or below, idle connections are left alone.
func TestConnsCloseIdleUnderPressure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := NewConns(ConnLimits{Max: 10})
	srv := &http.Server{ConnState: conns.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(conns.Listener(ln))
	defer srv.Close()
	idle := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c
	}
	// closed says whether the server closed c, waiting up to wait.
	closed := func(c net.Conn, wait time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	old := []net.Conn{idle(), idle(), idle(), idle()}
	waitIdle := time.Now().Add(pressureIdle + 100*time.Millisecond)
	for conns.Open() != 4 || time.Now().Before(waitIdle) {
		time.Sleep(10 * time.Millisecond) // the idle time is what is tested
	}
	// 5 of 10 open: not over half, the old idle ones stay.
	fifthDialed := time.Now()
	fifth := idle()
	if closed(old[0], 200*time.Millisecond) {
		t.Fatal("an idle connection was closed with 5 of 10 open, not over half")
	}
	// 6, then 7 of 10: over half, the ones idle a second are closed.
	idle()
	idle()
	// fifth had waited at most this long when the 7th came in.
	fifthIdle := time.Since(fifthDialed)
	for i, c := range old {
		if !closed(c, 5*time.Second) {
			t.Errorf("connection %d, idle over %s with 7 of 10 open, was not closed", i, pressureIdle)
		}
	}
	if fifthIdle < pressureIdle && closed(fifth, 200*time.Millisecond) {
		t.Errorf("a connection idle at most %s was closed under pressure", fifthIdle.Round(time.Millisecond))
	}
}
