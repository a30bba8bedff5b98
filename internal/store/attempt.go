package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Attempts: which patch the worker is working on, so that one whose
// processing kills the daemon (out of memory, a crash, SIGKILL) is known
// when it comes back, and is not tried forever.
//
// The worker calls BeginAttempt before it works on a patch and EndAttempt
// when it is done (it does so around a patch's planning). Both
// write one fixed-size block in place at the start of dir/attempt, a few
// microseconds and no fsync: what the process wrote outlives the
// process, so a daemon that died leaves the patch named there with its
// count. Only a count that already records a death is fsynced, so that a
// power loss cannot take it back either; a power loss in the middle of an
// ordinary patch costs that patch its count, nothing else. The journal
// is not used: a record, and its fsync, for every patch the worker starts
// would cost the ingest path.

const (
	attemptName  = "attempt"
	attemptMagic = "patchd-attempt 1"
	attemptSize  = 512 // the magic, a count and an id of at most MaxIDLen bytes, one line each
)

type attempts struct {
	mu     sync.Mutex
	f      *os.File
	loaded bool
	id     string // the patch begun and not ended, "" for none
	count  int    // how many times it was begun without ending
}

// BeginAttempt records that the worker starts on patch id and returns how
// many earlier attempts at it began and never ended: each is a daemon that
// died while working on it. Errors are only about the record; the caller
// may go on without it.
func (s *Store) BeginAttempt(id string) (deaths int, err error) {
	a := &s.attempt
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := s.loadAttempt(); err != nil {
		return 0, err
	}
	if a.id == id {
		deaths = a.count
	}
	a.id, a.count = id, deaths+1
	return deaths, s.writeAttempt(deaths > 0)
}

// EndAttempt records that the work begun on the patch last begun is over
// (the daemon did not die of it).
func (s *Store) EndAttempt() error {
	a := &s.attempt
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded || a.id == "" {
		return nil
	}
	a.id, a.count = "", 0
	return s.writeAttempt(false)
}

// forgetAttempt clears the record of a planning begun on patch id and
// never ended: a new attempt at a failed patch (Submit) starts with no
// deaths counted against it. A patch dropped after it killed the daemon
// twice, then sent again fixed, would otherwise fail at once as crashed.
// A failure to write is logged: the new attempt is stored all the same.
func (s *Store) forgetAttempt(id string) {
	a := &s.attempt
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-s.closed:
		return
	default:
	}
	if err := s.loadAttempt(); err != nil || a.id != id {
		return
	}
	a.id, a.count = "", 0
	// Synced: the count it clears may have been, and a power loss must
	// not bring it back.
	if err := s.writeAttempt(true); err != nil {
		s.log.Warn("could not clear the count of deaths of a patch sent again", "id", id, "err", err)
	}
}

// loadAttempt reads the file once: what the previous process left.
func (s *Store) loadAttempt() error {
	a := &s.attempt
	if a.loaded {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(s.dir, attemptName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", attemptName, err)
	}
	buf := make([]byte, attemptSize)
	n, _ := f.ReadAt(buf, 0)
	lines := strings.Split(string(bytes.TrimRight(buf[:n], "\n\x00")), "\n")
	if len(lines) == 3 && lines[0] == attemptMagic {
		if c, err := strconv.Atoi(lines[1]); err == nil && c > 0 && validID(lines[2]) == nil {
			a.id, a.count = lines[2], c
		}
	}
	a.f, a.loaded = f, true
	return nil
}

func (s *Store) writeAttempt(sync bool) error {
	a := &s.attempt
	buf := make([]byte, attemptSize)
	copy(buf, fmt.Sprintf("%s\n%d\n%s\n", attemptMagic, a.count, a.id))
	for i := range buf {
		if buf[i] == 0 {
			buf[i] = '\n'
		}
	}
	if _, err := a.f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("write %s: %w", attemptName, err)
	}
	if sync {
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", attemptName, err)
		}
	}
	return nil
}

func (s *Store) closeAttempt() error {
	a := &s.attempt
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	a.loaded = false
	return err
}

// ErrNotQueued means a patch cannot be dropped: the worker has started on
// it, or it is finished.
var ErrNotQueued error = &sentinel{"patch is not queued", CodeNotQueued}

// DroppedError is the error a dropped patch keeps.
const DroppedError = "dropped before it was applied (patchd patches drop)"

// Drop fails a queued patch without applying it, as a person asked: the
// way out of a patch that keeps the worker from the ones after it. It
// records the event "patch.dropped". A patch that is not queued is refused
// with an error wrapping ErrNotQueued that says its state.
func (s *Store) Drop(ctx context.Context, id string) (Patch, error) {
	return s.update(ctx, id, nil, "patch.dropped", func(p *Patch) error {
		if p.State != StateQueued {
			return fmt.Errorf("%w: %s is %s", ErrNotQueued, id, p.State)
		}
		p.State, p.Error, p.Code = StateFailed, DroppedError, CodeDropped
		return nil
	})
}
