package control

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCallAndModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	if err := Call(context.Background(), path, "status", nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Call with no socket = %v, want ErrNotRunning", err)
	}
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	s := NewServer(l, func(ctx context.Context, cmd string, _ json.RawMessage) (any, bool, error) {
		switch cmd {
		case "status":
			return map[string]int{"pid": 7}, false, nil
		case "stop":
			return nil, true, nil
		}
		return nil, false, errors.New("unknown command " + cmd)
	}, slog.New(slog.DiscardHandler))
	go s.Serve(context.Background())

	var got struct{ PID int }
	if err := Call(context.Background(), path, "status", &got); err != nil || got.PID != 7 {
		t.Errorf("Call(status) = %+v, %v; want pid 7", got, err)
	}
	if err := Call(context.Background(), path, "bogus", nil); err == nil || !strings.Contains(err.Error(), "unknown command bogus") {
		t.Errorf("Call(bogus) = %v, want the daemon's error", err)
	}

	// A held connection ends only when the daemon goes; here the deadline
	// stands in for a daemon that never exits.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := CallAndWait(ctx, path, "stop", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CallAndWait(stop) on a daemon that stays = %v, want DeadlineExceeded", err)
	}
	s.Close()
	s.mu.Lock()
	for _, c := range s.held {
		c.Close()
	}
	s.mu.Unlock()
}

// TestListenReplacesStaleSocket: a socket file left by a killed daemon does
// not stop the next one.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	l.Close()
}

// TestStandbys: standbys register and are counted; StopStandbys tells them
// and waits until their connections close; one that registers after the
// stop is told at once; DropStandbys lets them go without a stop.
func TestStandbys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(l, func(ctx context.Context, cmd string, _ json.RawMessage) (any, bool, error) { return nil, false, nil }, slog.New(slog.DiscardHandler))
	go s.Serve(context.Background())
	defer s.Close()

	// Two standbys; one is dropped and comes back, as after a restart.
	type reg struct {
		c   chan net.Conn
		err chan error
	}
	register := func(pid int) reg {
		r := reg{make(chan net.Conn, 1), make(chan error, 1)}
		go func() {
			c, err := Standby(context.Background(), path, pid)
			r.c <- c
			r.err <- err
		}()
		return r
	}
	waitCount := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(s.Standbys()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("Standbys() = %v, want %d", s.Standbys(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A standby whose own context ends leaves.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Standby(ctx, path, 14); done <- err }()
	waitCount(1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Standby with its context canceled = %v, want context.Canceled", err)
	}
	waitCount(0)

	a, b := register(11), register(12)
	waitCount(2)
	s.DropStandbys()
	for _, r := range []reg{a, b} {
		if c, err := <-r.c, <-r.err; c != nil || !errors.Is(err, ErrNoAnswer) {
			t.Errorf("Standby after DropStandbys = %v, %v; want no connection and ErrNoAnswer", c, err)
		}
	}
	waitCount(0)
	a, b = register(11), register(12)
	waitCount(2)
	if got := s.Standbys(); !slices.Equal(got, []int{11, 12}) {
		t.Errorf("Standbys() = %v, want [11 12]", got)
	}

	// A standby told to stop closes its connection as it exits.
	stopped := make(chan []int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- s.StopStandbys(ctx)
	}()
	for _, r := range []reg{a, b} {
		c, err := <-r.c, <-r.err
		if c == nil || err != nil {
			t.Fatalf("Standby on stop = %v, %v; want the connection to keep", c, err)
		}
		c.Close() // the process exits
	}
	if got := <-stopped; !slices.Equal(got, []int{11, 12}) {
		t.Errorf("StopStandbys = %v, want [11 12]", got)
	}
	// Too late to be waited for, not too late to be told.
	late := register(13)
	if c, err := <-late.c, <-late.err; c == nil || err != nil {
		t.Errorf("Standby after the stop = %v, %v; want told at once", c, err)
	} else {
		c.Close()
	}
}
