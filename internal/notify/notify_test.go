package notify

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestNotifierFansOut(t *testing.T) {
	sd := fakeSystemd(t, tempSocket(t))
	t.Setenv(EnvWatchdogUsec, "")
	t.Setenv(EnvWatchdogPID, "")
	conn, fd := ipcPair(t)
	setChannel(t, strconv.Itoa(fd), "json")
	n := New(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer n.Close()
	pm2 := bufio.NewReader(conn)
	pid := strconv.Itoa(os.Getpid())

	n.Ready("serving")
	if got, want := recv(t, sd), "READY=1\nSTATUS=serving\nMAINPID="+pid; got != want {
		t.Errorf("systemd got %q, want %q", got, want)
	}
	if got, want := readLine(t, pm2, conn), "\"ready\"\n"; got != want {
		t.Errorf("pm2 got %q, want %q", got, want)
	}

	// Only systemd has these; nothing must reach PM2 (checked below).
	n.Stopping()
	if got, want := recv(t, sd), "STOPPING=1"; got != want {
		t.Errorf("systemd got %q, want %q", got, want)
	}
	n.MainPID(4242)
	if got, want := recv(t, sd), "MAINPID=4242"; got != want {
		t.Errorf("systemd got %q, want %q", got, want)
	}
	n.Reloading()
	if got := recv(t, sd); !reloadingRE.MatchString(got) {
		t.Errorf("systemd got %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}

	// Without a watchdog, Watchdog returns at once.
	n.Watchdog(context.Background(), func() bool { return true })

	// Concurrent use, checked by the race detector; every message arrives.
	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { n.Ready("again") })
	}
	wg.Wait()
	for range workers {
		if got, want := readLine(t, pm2, conn), "\"ready\"\n"; got != want {
			t.Errorf("pm2 got %q, want %q", got, want)
		}
	}
	if got := len(pending(t, sd)); got != workers {
		t.Errorf("systemd got %d datagrams, want %d", got, workers)
	}

	n.Close()
	n.Ready("after close") // PM2 is gone: logged, not fatal
	if got := recv(t, sd); got != "READY=1\nSTATUS=after close\nMAINPID="+pid {
		t.Errorf("systemd after Close got %q, want READY=1", got)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := pm2.ReadString('\n'); rest != "" {
		t.Errorf("pm2 got %q (%v) after Ready once closed, want nothing", rest, err)
	}
}

func TestNotifierWatchdog(t *testing.T) {
	sd := fakeSystemd(t, tempSocket(t))
	t.Setenv(EnvWatchdogUsec, "100000")
	t.Setenv(EnvWatchdogPID, "")
	setChannel(t, "", "")
	n := New(nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Watchdog(ctx, func() bool { return true })
	}()
	for range 2 {
		if got := recv(t, sd); got != "WATCHDOG=1" {
			t.Errorf("ping = %q, want %q", got, "WATCHDOG=1")
		}
	}
	cancel()
	<-done
}

func TestNotifierAbsent(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	setChannel(t, "", "")
	n := New(nil)
	n.Ready("x")
	n.Reloading()
	n.Stopping()
	n.MainPID(1)
	n.Watchdog(context.Background(), func() bool { return true })
	select {
	case <-n.ShutdownRequested():
		t.Error("ShutdownRequested closed without any supervisor")
	default:
	}
	n.Close()
}

func TestNotifierShutdownRequested(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	conn, fd := ipcPair(t)
	setChannel(t, strconv.Itoa(fd), "json")
	n := New(nil)
	defer n.Close()
	if _, err := conn.Write([]byte("\"shutdown\"\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("ShutdownRequested not closed after PM2 sent \"shutdown\"")
	}
}

func TestCleanEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{name: "nothing to remove", env: []string{"PATH=/bin", "HOME=/root"}, want: []string{"PATH=/bin", "HOME=/root"}},
		{
			name: "every protocol variable",
			env: []string{
				"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=7",
				"NODE_CHANNEL_FD=3", "NODE_CHANNEL_SERIALIZATION_MODE=json", "HOME=/root",
			},
			want: []string{"PATH=/bin", "HOME=/root"},
		},
		{name: "look-alikes stay", env: []string{"NOTIFY_SOCKET_X=1", "XNODE_CHANNEL_FD=3", "PATCHD_PORT=0"}, want: []string{"NOTIFY_SOCKET_X=1", "XNODE_CHANNEL_FD=3", "PATCHD_PORT=0"}},
		{name: "empty value", env: []string{"NOTIFY_SOCKET=", "A=b"}, want: []string{"A=b"}},
		{name: "nil", env: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.env)
			got := CleanEnv(tt.env)
			if !slices.Equal(got, tt.want) {
				t.Errorf("CleanEnv(%q) = %q, want %q", tt.env, got, tt.want)
			}
			if !slices.Equal(tt.env, in) {
				t.Errorf("CleanEnv modified its argument: %q, was %q", tt.env, in)
			}
		})
	}
}

func TestUnsetPM2Env(t *testing.T) {
	setChannel(t, "3", "json")
	UnsetPM2Env()
	for _, k := range []string{EnvNodeChannelFD, EnvNodeChannelSerialization} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("after UnsetPM2Env, %s = %q, want unset", k, v)
		}
	}
}
