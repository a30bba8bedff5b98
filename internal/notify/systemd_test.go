package notify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSystemd listens on a unix datagram socket at name and points
// NOTIFY_SOCKET at it, as systemd does for a Type=notify service.
func fakeSystemd(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv(EnvNotifySocket, name)
	return conn
}

// tempSocket is a socket path in a fresh directory, short enough for
// sockaddr_un (104 bytes on macOS) even where TMPDIR is long.
func tempSocket(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	if len(p) >= 100 {
		dir, err := os.MkdirTemp("/tmp", "notify")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		p = filepath.Join(dir, "n.sock")
	}
	return p
}

// recv reads one datagram, failing the test if none arrives in time.
func recv(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

// pending returns the datagrams already queued, without waiting. (A read
// deadline in the past would not do: Go then fails the read before trying.)
func pending(t *testing.T, conn *net.UnixConn) []string {
	t.Helper()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true // never wait for more
		})
		if err != nil {
			t.Fatalf("read datagram: %v", err)
		}
		if rerr == syscall.EAGAIN {
			return got
		}
		if rerr != nil {
			t.Fatalf("read datagram: %v", rerr)
		}
		got = append(got, string(buf[:n]))
	}
}

var reloadingRE = regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`)

// testMessages checks each message against a fake systemd at name.
func testMessages(t *testing.T, name string) {
	conn := fakeSystemd(t, name)
	s := NewSystemd()
	if !s.Enabled() {
		t.Fatalf("Enabled() = false with %s=%q, want true", EnvNotifySocket, name)
	}
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{name: "ready", send: func() error { return s.Ready("serving on 127.0.0.1:5555") }, want: "READY=1\nSTATUS=serving on 127.0.0.1:5555\nMAINPID=" + pid},
		{name: "ready without status", send: func() error { return s.Ready("") }, want: "READY=1\nMAINPID=" + pid},
		{name: "ready status on one line", send: func() error { return s.Ready("a\nMAINPID=1\r\nb") }, want: "READY=1\nSTATUS=a MAINPID=1  b\nMAINPID=" + pid},
		{name: "stopping", send: s.Stopping, want: "STOPPING=1"},
		{name: "mainpid", send: func() error { return s.MainPID(4242) }, want: "MAINPID=4242"},
		{name: "handover", send: func() error { return s.HandOver(4242, "restarted\nnow") }, want: "MAINPID=4242\nREADY=1\nSTATUS=restarted now"},
		{name: "status", send: func() error { return s.Status("applying P8.13.22") }, want: "STATUS=applying P8.13.22"},
		{name: "status on one line", send: func() error { return s.Status("x\nREADY=1") }, want: "STATUS=x READY=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.send(); err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := recv(t, conn); got != tt.want {
				t.Errorf("datagram = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("reloading", func(t *testing.T) {
		before, err := monotonicUsec()
		if err != nil {
			t.Skipf("no CLOCK_MONOTONIC here: %v", err)
		}
		if err := s.Reloading(); err != nil {
			t.Fatalf("Reloading: %v", err)
		}
		got := recv(t, conn)
		after, _ := monotonicUsec()
		m := reloadingRE.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("datagram = %q, want RELOADING=1\\nMONOTONIC_USEC=<n>", got)
		}
		usec, _ := strconv.ParseUint(m[1], 10, 64)
		if usec < before || usec > after {
			t.Errorf("MONOTONIC_USEC = %d, want within [%d, %d]", usec, before, after)
		}
	})

	t.Run("invalid mainpid", func(t *testing.T) {
		if err := s.MainPID(0); err == nil {
			t.Errorf("MainPID(0) = nil, want an error")
		}
		if got := pending(t, conn); len(got) != 0 {
			t.Errorf("datagrams = %q, want none", got)
		}
	})
}

func TestSystemdMessages(t *testing.T) {
	testMessages(t, tempSocket(t))
}

func TestSystemdDisabled(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	t.Setenv(EnvWatchdogUsec, "100000")
	s := NewSystemd()
	if s.Enabled() {
		t.Errorf("Enabled() = true without %s, want false", EnvNotifySocket)
	}
	for name, err := range map[string]error{
		"Ready":     s.Ready("x"),
		"Reloading": s.Reloading(),
		"Stopping":  s.Stopping(),
		"MainPID":   s.MainPID(1),
		"Status":    s.Status("x"),
	} {
		if err != nil {
			t.Errorf("%s() = %v, want nil", name, err)
		}
	}
	if got := s.WatchdogInterval(); got != 0 {
		t.Errorf("WatchdogInterval() = %v, want 0", got)
	}
	if got := s.HandoffEnv(); got != nil {
		t.Errorf("HandoffEnv() = %q, want nil", got)
	}
}

func TestSystemdErrors(t *testing.T) {
	tests := []struct {
		name   string
		socket string
	}{
		{name: "nobody listening", socket: filepath.Join(t.TempDir(), "missing.sock")},
		{name: "vsock", socket: "vsock:2:1234"},
		{name: "relative", socket: "run/notify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvNotifySocket, tt.socket)
			if err := NewSystemd().Ready("x"); err == nil {
				t.Errorf("Ready with %s=%q = nil, want an error", EnvNotifySocket, tt.socket)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name   string
		socket string
		usec   string
		pid    string
		want   time.Duration
	}{
		{name: "half of WATCHDOG_USEC", socket: "/run/notify", usec: "100000", want: 50 * time.Millisecond},
		{name: "WATCHDOG_PID is us", socket: "/run/notify", usec: "100000", pid: self, want: 50 * time.Millisecond},
		{name: "WATCHDOG_PID is another process", socket: "/run/notify", usec: "100000", pid: "1", want: 0},
		{name: "WATCHDOG_PID unparsable", socket: "/run/notify", usec: "100000", pid: "me", want: 0},
		{name: "no WATCHDOG_USEC", socket: "/run/notify", want: 0},
		{name: "zero WATCHDOG_USEC", socket: "/run/notify", usec: "0", want: 0},
		{name: "negative WATCHDOG_USEC", socket: "/run/notify", usec: "-5", want: 0},
		{name: "unparsable WATCHDOG_USEC", socket: "/run/notify", usec: "30s", want: 0},
		{name: "no NOTIFY_SOCKET", usec: "100000", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvNotifySocket, tt.socket)
			t.Setenv(EnvWatchdogUsec, tt.usec)
			t.Setenv(EnvWatchdogPID, tt.pid)
			if got := NewSystemd().WatchdogInterval(); got != tt.want {
				t.Errorf("WatchdogInterval() with USEC=%q PID=%q = %v, want %v", tt.usec, tt.pid, got, tt.want)
			}
		})
	}
}

func TestWatchdogStopsWhenNotAlive(t *testing.T) {
	conn := fakeSystemd(t, tempSocket(t))
	t.Setenv(EnvWatchdogUsec, "100000")
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()))
	s := NewSystemd()
	if got, want := s.WatchdogInterval(), 50*time.Millisecond; got != want {
		t.Fatalf("WatchdogInterval() = %v, want %v", got, want)
	}

	const healthyTicks = 3
	var calls atomic.Int64
	alive := func() bool { return calls.Add(1) <= healthyTicks }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		s.Watchdog(ctx, alive)
	}()

	for i := range healthyTicks {
		if got := recv(t, conn); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q, want %q", i, got, "WATCHDOG=1")
		}
	}
	// The first ping is immediate and the ticker never fires early.
	if got, min := time.Since(start), (healthyTicks-1)*50*time.Millisecond; got < min {
		t.Errorf("%d pings took %v, want at least %v", healthyTicks, got, min)
	}
	// Let several unhealthy ticks pass; each one must go unpinged.
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < healthyTicks+3 {
		if time.Now().After(deadline) {
			t.Fatalf("alive called %d times in 10s, want %d", calls.Load(), healthyTicks+3)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return after its context was cancelled")
	}
	if got := pending(t, conn); len(got) != 0 {
		t.Errorf("pings after alive() turned false = %q, want none", got)
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	conn := fakeSystemd(t, tempSocket(t))
	t.Setenv(EnvWatchdogUsec, "100000")
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()+1))
	s := NewSystemd()
	if got := s.WatchdogInterval(); got != 0 {
		t.Errorf("WatchdogInterval() = %v, want 0", got)
	}
	// Watchdog must return by itself: the context is never cancelled.
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watchdog(context.Background(), func() bool {
			t.Error("alive called with the watchdog meant for another process")
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return with WATCHDOG_PID naming another process")
	}
	if got := pending(t, conn); len(got) != 0 {
		t.Errorf("datagrams = %q, want none", got)
	}
}

func TestHandoffEnv(t *testing.T) {
	t.Setenv(EnvNotifySocket, "/run/systemd/notify")
	t.Setenv(EnvWatchdogUsec, "30000000")
	t.Setenv(EnvWatchdogPID, strconv.Itoa(os.Getpid()))
	s := NewSystemd()
	UnsetSystemdEnv()
	for _, k := range []string{EnvNotifySocket, EnvWatchdogUsec, EnvWatchdogPID} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("after UnsetSystemdEnv, %s = %q, want unset", k, v)
		}
	}
	got := s.HandoffEnv()
	want := []string{"NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000"}
	if !slices.Equal(got, want) {
		t.Errorf("HandoffEnv() = %q, want %q", got, want)
	}
}
