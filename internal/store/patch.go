package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/patch"
)

// State is where a patch is in its life cycle:
// queued → applying → applied | failed, queued → failed, applied → reverted,
// and applying → queued when a crashed attempt is requeued.
type State string

// The states of a patch.
const (
	StateQueued   State = "queued"
	StateApplying State = "applying"
	StateApplied  State = "applied"
	StateFailed   State = "failed"
	StateReverted State = "reverted"
)

// States lists every state, in life-cycle order.
func States() []State {
	return []State{StateQueued, StateApplying, StateApplied, StateFailed, StateReverted}
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateQueued, StateApplying, StateApplied, StateFailed, StateReverted:
		return true
	}
	return false
}

// ValidTransition reports whether a patch may move from one state to
// another. Staying in the same state is always allowed (an update of other
// fields).
func ValidTransition(from, to State) bool {
	if from == to {
		return from.Valid()
	}
	switch from {
	case StateQueued:
		return to == StateApplying || to == StateFailed
	case StateApplying:
		return to == StateApplied || to == StateFailed || to == StateQueued
	case StateApplied:
		return to == StateReverted
	}
	return false
}

// FileChange records what applying a patch did to one file, so that it can
// be shown and reverted. Hashes are hex SHA-256 of the file contents.
type FileChange struct {
	Path    string `json:"path"`
	OldHash string `json:"old_hash,omitempty"`
	NewHash string `json:"new_hash,omitempty"`
	OldMode uint32 `json:"old_mode,omitempty"`
	Existed bool   `json:"existed"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Patch is the stored record of one submitted patch. The store owns the
// copy it keeps; every Patch it returns is a copy the caller may modify.
type Patch struct {
	// ID is the sender's id of the patch, unique in the store.
	ID string `json:"id"`
	// Seq is the order of arrival, from 1. It increases with arrival but
	// may skip numbers after a failed write.
	Seq uint64 `json:"seq"`
	// Hash is the hex SHA-256 of the submitted body, which makes a repeated
	// submission recognisable.
	Hash        string       `json:"hash"`
	Role        string       `json:"role,omitempty"`
	Target      string       `json:"target_file,omitempty"`
	Description string       `json:"description,omitempty"`
	State       State        `json:"state"`
	Error       string       `json:"error,omitempty"`
	Diff        string       `json:"diff,omitempty"`
	Files       []FileChange `json:"files,omitempty"`
	// Notes say how edits were fitted when they did not match exactly.
	Notes []string `json:"notes,omitempty"`
	// Commit is the short hash of the git commit that recorded the
	// applied patch (--git); "" without git.
	Commit     string    `json:"commit,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	RevertedAt time.Time `json:"reverted_at,omitzero"`
	// Code says why a failed (or waiting) patch failed, for programs: the
	// code of the error Error tells (see the README's "Error codes"); ""
	// when none is known, as for patches that failed before codes were
	// kept.
	Code string `json:"code,omitempty"`
	// Attempts are the earlier attempts at this id, oldest first: each a
	// body that failed and was replaced by another one sent under the same
	// id (see Submit). At most MaxAttempts are kept, the latest.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is an earlier attempt at a patch: a body that failed, and how.
type Attempt struct {
	// Number counts the attempts at the id from 1; the patch's own
	// attempt is the last one's Number plus one.
	Number     int       `json:"number"`
	Hash       string    `json:"hash"`
	Error      string    `json:"error,omitempty"` // at most maxAttemptError bytes
	Code       string    `json:"code,omitempty"`
	ReceivedAt time.Time `json:"received_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// MaxAttempts is how many earlier attempts a patch keeps: a patch's
// record, written whole at each of its changes, carries them.
const MaxAttempts = 10

// maxAttemptError bounds the error an earlier attempt keeps, in bytes (a
// failed check's output can be 16 KiB).
const maxAttemptError = 4 << 10

// clone returns a copy that shares no memory with p.
func (p Patch) clone() Patch {
	p.Files = slices.Clone(p.Files)
	p.Notes = slices.Clone(p.Notes)
	p.Attempts = slices.Clone(p.Attempts)
	return p
}

// MaxIDLen is the longest patch id the store accepts, in bytes: the
// limit a block's id is parsed with, so that the two cannot disagree.
const MaxIDLen = patch.MaxIDLen

func validID(id string) error {
	switch {
	case id == "":
		return errors.New("patch id is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("patch id %.20q…: longer than %d bytes", id, MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("patch id %q: not valid UTF-8", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("patch id %q: contains a control character", id)
		}
	}
	return nil
}

// normalize makes p equal to what a journal round trip gives back (valid
// UTF-8 strings, UTC times without monotonic clock readings), so that a
// patch reads the same before and after a restart.
func normalize(p *Patch) {
	fix := func(s *string) { *s = strings.ToValidUTF8(*s, "\uFFFD") }
	fix(&p.Hash)
	fix(&p.Role)
	fix(&p.Target)
	fix(&p.Description)
	fix(&p.Error)
	fix(&p.Code)
	fix(&p.Diff)
	for i := range p.Files {
		fix(&p.Files[i].Path)
		fix(&p.Files[i].OldHash)
		fix(&p.Files[i].NewHash)
	}
	if len(p.Files) == 0 {
		p.Files = nil
	}
	for i := range p.Attempts {
		a := &p.Attempts[i]
		fix(&a.Hash)
		fix(&a.Error)
		fix(&a.Code)
		a.ReceivedAt, a.FinishedAt = normTime(a.ReceivedAt), normTime(a.FinishedAt)
	}
	if len(p.Attempts) == 0 {
		p.Attempts = nil
	}
	p.ReceivedAt = normTime(p.ReceivedAt)
	p.StartedAt = normTime(p.StartedAt)
	p.FinishedAt = normTime(p.FinishedAt)
	p.RevertedAt = normTime(p.RevertedAt)
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

// checkUpdate validates what an Update callback made of cur and fills in
// the timing of a state change the callback left unset.
func checkUpdate(cur Patch, next *Patch, now time.Time) error {
	if next.ID != cur.ID || next.Seq != cur.Seq || next.Hash != cur.Hash {
		return fmt.Errorf("update %s: id, seq and hash cannot change", cur.ID)
	}
	if !slices.EqualFunc(next.Attempts, cur.Attempts, Attempt.equal) {
		return fmt.Errorf("update %s: its earlier attempts cannot change", cur.ID)
	}
	if !next.State.Valid() {
		return fmt.Errorf("update %s: unknown state %q", cur.ID, next.State)
	}
	if !ValidTransition(cur.State, next.State) {
		return fmt.Errorf("update %s: %w: %s → %s", cur.ID, ErrInvalidTransition, cur.State, next.State)
	}
	if next.State != cur.State {
		switch next.State {
		case StateApplying:
			if next.StartedAt.IsZero() || next.StartedAt.Equal(cur.StartedAt) {
				next.StartedAt = now
			}
		case StateApplied, StateFailed:
			if next.FinishedAt.IsZero() {
				next.FinishedAt = now
			}
		case StateReverted:
			if next.RevertedAt.IsZero() {
				next.RevertedAt = now
			}
		}
	}
	normalize(next)
	return nil
}

func (a Attempt) equal(b Attempt) bool {
	return a.Number == b.Number && a.Hash == b.Hash && a.Error == b.Error && a.Code == b.Code &&
		a.ReceivedAt.Equal(b.ReceivedAt) && a.FinishedAt.Equal(b.FinishedAt)
}

// reattempt returns the record of a new attempt at the failed patch cur
// with the submission np: np's fields, queued, with cur's attempt added
// to its history (the latest MaxAttempts kept).
func reattempt(cur, np Patch) Patch {
	n := 1
	if k := len(cur.Attempts); k > 0 {
		n = cur.Attempts[k-1].Number + 1
	}
	np.Attempts = append(slices.Clone(cur.Attempts), Attempt{Number: n, Hash: cur.Hash,
		Error: cutError(cur.Error), Code: cur.Code, ReceivedAt: cur.ReceivedAt, FinishedAt: cur.FinishedAt})
	if k := len(np.Attempts); k > MaxAttempts {
		np.Attempts = slices.Clone(np.Attempts[k-MaxAttempts:])
	}
	return np
}

// cutError shortens an error to maxAttemptError bytes, at a character's
// start, ending with "…".
func cutError(s string) string {
	if len(s) <= maxAttemptError {
		return s
	}
	const mark = "…"
	i := maxAttemptError - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

// eventName names the event a change from one state to another is logged
// as; "" means no state change.
func eventName(from, to State) string {
	switch {
	case from == "":
		return "patch.submitted"
	case from == to:
		return ""
	case from == StateApplying && to == StateQueued:
		return "patch.requeued"
	}
	return "patch." + string(to)
}
