package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/instance"
	"github.com/patchd/patchd/internal/notify"
)

// lockedBuffer is a log destination read while a goroutine writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStandbyStopMarker: a standby that could not register with the active
// daemon (here there is no control socket at all) still learns of a
// `patchd stop` from the stop marker when it wins the lock, and stands
// down; without a stop it takes over; a stop that happened before it began
// to stand by is not meant for it.
func TestStandbyStopMarker(t *testing.T) {
	tests := []struct {
		name        string
		stopBefore  bool // a stop before the standby starts
		stopWhile   bool // a stop while it stands by
		wantStopped bool
	}{
		{name: "stopped while standing by", stopWhile: true, wantStopped: true},
		{name: "active died", wantStopped: false},
		{name: "stop before it started", stopBefore: true, wantStopped: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{StateDir: t.TempDir(), IfRunning: "standby"}
			active, err := instance.TryLock(cfg.LockPath())
			if err != nil {
				t.Fatal(err)
			}
			defer active.Release()
			if tt.stopBefore {
				if err := instance.MarkStop(cfg.StopPath()); err != nil {
					t.Fatal(err)
				}
			}
			var logs lockedBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			type outcome struct {
				acq acquired
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				acq, err := acquire(context.Background(), cfg, log, inheritance{}, false, notify.New(nil))
				done <- outcome{acq, err}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), "standing by") {
				if time.Now().After(deadline) {
					t.Fatalf("the standby did not stand by; log:\n%s", logs.String())
				}
				time.Sleep(time.Millisecond)
			}
			if tt.stopWhile {
				if err := instance.MarkStop(cfg.StopPath()); err != nil {
					t.Fatal(err)
				}
			}
			active.Release()
			var o outcome
			select {
			case o = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("acquire did not return after the lock was released")
			}
			if o.err != nil {
				t.Fatalf("acquire: %v", o.err)
			}
			if o.acq.stopped {
				if held, _ := instance.Held(cfg.LockPath()); held {
					t.Errorf("a standby that stood down still holds the lock")
				}
			}
			o.acq.lock.Release()
			if o.acq.stopped != tt.wantStopped || (o.acq.lock != nil) == tt.wantStopped {
				t.Errorf("acquire = stopped %v, lock %v; want stopped %v", o.acq.stopped, o.acq.lock != nil, tt.wantStopped)
			}
		})
	}
}
