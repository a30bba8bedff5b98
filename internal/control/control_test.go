package control

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
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
	s := NewServer(l, func(ctx context.Context, cmd string) (any, bool, error) {
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
