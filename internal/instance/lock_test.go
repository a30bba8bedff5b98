package instance

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestTryLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchd.lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatalf("first TryLock: %v", err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock error = %v, want ErrLocked", err)
	}
	if held, err := Held(path); err != nil || !held {
		t.Errorf("Held = %v, %v; want true", held, err)
	}
	a.Release()
	b, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	b.Release()
	if held, _ := Held(path); held {
		t.Errorf("Held after release = true, want false")
	}
}

func TestHeldMissingFile(t *testing.T) {
	if held, err := Held(filepath.Join(t.TempDir(), "none", "patchd.lock")); held || err != nil {
		t.Errorf("Held(missing) = %v, %v; want false, nil", held, err)
	}
}

func TestWaitTakesOverOnRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchd.lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock, 1)
	go func() {
		l, err := Wait(context.Background(), path)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("Wait returned while the lock was held")
	case <-time.After(50 * time.Millisecond):
	}
	a.Release()
	select {
	case l := <-got:
		l.Release()
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not take the lock after release")
	}
}

func TestWaitCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchd.lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait error = %v, want context.Canceled", err)
	}
	a.Release()
	// The abandoned waiter must not keep the lock once it wins it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := TryLock(path)
		if err == nil {
			l.Release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("abandoned waiter kept the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLockDiesWithProcess: a holder killed with SIGKILL leaves nothing stale.
func TestLockDiesWithProcess(t *testing.T) {
	if os.Getenv("PATCHD_LOCK_HOLDER") != "" {
		if _, err := TryLock(os.Getenv("PATCHD_LOCK_HOLDER")); err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("held\n")
		select {}
	}
	path := filepath.Join(t.TempDir(), "patchd.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDiesWithProcess$")
	cmd.Env = append(os.Environ(), "PATCHD_LOCK_HOLDER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("child did not report holding the lock: %q %v", buf, err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock while child holds = %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after kill -9 of holder = %v, want the lock", err)
	}
	l.Release()
}

// TestPassedLockOutlivesParent: a lock handed to a child through ExtraFiles
// stays held after the parent releases its copy, until the child dies.
func TestPassedLockOutlivesParent(t *testing.T) {
	if os.Getenv("PATCHD_LOCK_CHILD") != "" {
		if _, err := FromFile(os.NewFile(3, "lock")); err != nil {
			os.Stdout.WriteString("fail\n")
			os.Exit(2)
		}
		os.Stdout.WriteString("held\n")
		select {}
	}
	path := filepath.Join(t.TempDir(), "patchd.lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPassedLockOutlivesParent$")
	cmd.Env = append(os.Environ(), "PATCHD_LOCK_CHILD=1")
	cmd.ExtraFiles = []*os.File{a.File()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("child did not adopt the lock: %q %v", buf, err)
	}
	a.Release()
	if held, _ := Held(path); !held {
		t.Fatal("lock free after the parent released it, want the child to hold it")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if held, _ := Held(path); held {
		t.Fatal("lock still held after the child died")
	}
}
