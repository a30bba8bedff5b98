package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
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
