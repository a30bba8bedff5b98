package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeSystemd is the receiving end of NOTIFY_SOCKET, as systemd has it: a
// unix datagram socket collecting sd_notify messages.
type fakeSystemd struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{path: path, conn: c}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.msgs = append(f.msgs, string(buf[:n]))
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return f
}

// find returns the first message (after skipping `from`) containing every
// one of the fields, and its index.
func (f *fakeSystemd) find(from int, fields ...string) (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := from; i < len(f.msgs); i++ {
		ok := true
		for _, field := range fields {
			if !strings.Contains("\n"+f.msgs[i]+"\n", "\n"+field) {
				ok = false
			}
		}
		if ok {
			return f.msgs[i], i
		}
	}
	return "", -1
}

func (f *fakeSystemd) wait(t *testing.T, from int, fields ...string) (string, int) {
	t.Helper()
	var msg string
	var i int
	deadline := time.Now().Add(15 * time.Second)
	for {
		if msg, i = f.find(from, fields...); i >= 0 {
			break
		}
		if time.Now().After(deadline) {
			f.mu.Lock()
			t.Fatalf("no sd_notify message with %v after #%d; got %q", fields, from, f.msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return msg, i
}

// TestSystemdNotify: under a NOTIFY_SOCKET, patchd reports READY=1 when it
// serves, pings the watchdog, reports RELOADING=1 with MONOTONIC_USEC on a
// restart and hands MAINPID to its successor, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sd := newFakeSystemd(t)
	cmd := e.command("run", "--port", "0")
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sd.path, "WATCHDOG_USEC=200000")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid

	ready, i := sd.wait(t, 0, "READY=1")
	if !strings.Contains(ready, fmt.Sprintf("MAINPID=%d", pid)) || !strings.Contains(ready, "STATUS=serving on 127.0.0.1:") {
		t.Errorf("ready message = %q, want MAINPID=%d and a status", ready, pid)
	}
	sd.wait(t, i, "WATCHDOG=1")
	_, j := sd.wait(t, i+1, "WATCHDOG=1") // keeps pinging
	if j <= i {
		t.Errorf("watchdog pinged once, want repeated pings")
	}

	r := e.run("restart")
	if r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	newPID := pidOf(r.stdout)
	reload, k := sd.wait(t, 0, "RELOADING=1", "MONOTONIC_USEC=")
	if strings.Contains(reload, "MONOTONIC_USEC=0\n") {
		t.Errorf("reloading message = %q, want a real MONOTONIC_USEC", reload)
	}
	sd.wait(t, k, fmt.Sprintf("MAINPID=%d", newPID), "READY=1")
	// Under systemd the old process exits: systemd follows the new MAINPID.
	if code := exitCode(t, cmd, 15*time.Second); code != 0 {
		t.Errorf("old main process exit code = %d, want 0; output:\n%s", code, out)
	}

	syscall.Kill(newPID, syscall.SIGTERM)
	sd.wait(t, k, "STOPPING=1")
	waitFor(t, 15*time.Second, "the new daemon to exit", func() bool { return len(e.pids()) == 0 })
}

// TestSocketActivation: a listening socket passed the systemd way
// (LISTEN_FDS, LISTEN_PID, fd 3) is served instead of binding a port.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
	// LISTEN_PID must be patchd's own pid: the shell sets it to its $$ and
	// then becomes patchd with exec, as systemd's fork does.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" "$@"`,
		patchdBin, "run", "--workspace", e.ws, "--port", "5555")
	cmd.Env = cleanEnv()
	cmd.ExtraFiles = []*os.File{f}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	st := e.waitRunning(10 * time.Second)
	if st.Address != addr {
		t.Errorf("status address = %s, want the passed socket %s (not --port 5555)", st.Address, addr)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("GET /health on the passed socket: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /health = %d", resp.StatusCode)
	}
	if !strings.Contains(out.String(), "serving on the socket passed by systemd") {
		t.Errorf("log does not say it adopted the socket:\n%s", out)
	}
}
