// Package instance keeps patchd to one instance per state directory.
//
// The instance lock is an flock on <state>/patchd.lock held for the life of
// the process. The kernel releases it on any death, kill -9 included, and it
// cannot be fooled by PID reuse, unlike a PID file that is checked and then
// written. A standby waits on the same lock and wins it the moment the
// active instance is gone.
package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked means another process holds the instance lock.
var ErrLocked = errors.New("instance lock is held by another process")

// Lock is a held instance lock.
type Lock struct {
	f *os.File
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	return f, nil
}

// TryLock takes the lock at path without waiting; ErrLocked if it is held.
func TryLock(path string) (*Lock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Wait blocks until it holds the lock at path or ctx is done. It sleeps in
// the kernel rather than polling, so a standby takes over as soon as the
// holder's last descriptor closes.
func Wait(ctx context.Context, path string) (*Lock, error) {
	if l, err := TryLock(path); !errors.Is(err, ErrLocked) {
		return l, err
	}
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	type result struct{ err error }
	done := make(chan result, 1)
	go func() { done <- result{flock(f, syscall.LOCK_EX)} }()
	select {
	case r := <-done:
		if r.err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, r.err)
		}
		return &Lock{f: f}, nil
	case <-ctx.Done():
		// The blocked flock cannot be interrupted; when it returns, drop the
		// lock at once so it never outlives our interest in it.
		go func() {
			<-done
			f.Close()
		}()
		return nil, ctx.Err()
	}
}

// FromFile adopts an inherited descriptor that already holds the lock (a
// parent took it and passed it on, so there is no moment without a holder).
func FromFile(f *os.File) (*Lock, error) {
	// Taking an flock we already hold through this open file description
	// succeeds at once; failing means the descriptor did not hold it.
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, fmt.Errorf("inherited lock fd %d: %w", f.Fd(), err)
	}
	return &Lock{f: f}, nil
}

// File returns the descriptor, to pass the lock to a child process.
func (l *Lock) File() *os.File { return l.f }

// Release gives the lock up. Other processes sharing the open file
// description (a child it was passed to) keep holding it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Held reports whether some process holds the lock at path right now.
func Held(path string) (bool, error) {
	l, err := TryLock(path)
	if errors.Is(err, ErrLocked) {
		return true, nil
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	l.Release()
	return false, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
