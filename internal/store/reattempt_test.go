package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func hashOf(body string) string {
	s := sha256.Sum256([]byte(body))
	return hex.EncodeToString(s[:])
}

// failPatch moves a queued patch through applying to failed, as the
// worker does.
func failPatch(t testing.TB, s *Store, id, why, code string) Patch {
	t.Helper()
	mustUpdate(t, s, id, func(p *Patch) {
		p.State = StateApplying
		p.Files = []FileChange{{Path: "src/" + id, OldHash: "a", NewHash: "b", Existed: true}}
	})
	return mustUpdate(t, s, id, func(p *Patch) { p.State, p.Error, p.Code, p.Diff = StateFailed, why, code, "a diff" })
}

func resubmit(t testing.TB, s *Store, id, body string) (Patch, bool, error) {
	t.Helper()
	return s.Submit(context.Background(), Patch{ID: id, Role: "fix", Target: "src/new", Description: "second try"}, []byte(body))
}

// TestResubmitFailed: a failed patch sent again with another body is a new
// attempt: queued again, at the back of the queue, with the new body,
// hash, role, target and description, and its earlier attempt kept.
func TestResubmitFailed(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mustSubmit(t, s, "P1", "body one")
	failed := failPatch(t, s, "P1", "search text not found in src/P1", "match_not_found")
	mustSubmit(t, s, "Q", "waiting in the queue")

	got, created, err := resubmit(t, s, "P1", "body two")
	if err != nil || !created {
		t.Fatalf("Submit(P1, another body) after it failed = created %v, %v; want a new attempt", created, err)
	}
	want := []Attempt{{Number: 1, Hash: hashOf("body one"), Error: "search text not found in src/P1",
		Code: "match_not_found", ReceivedAt: failed.ReceivedAt, FinishedAt: failed.FinishedAt}}
	if !reflect.DeepEqual(got.Attempts, want) {
		t.Errorf("Attempts = %+v, want %+v", got.Attempts, want)
	}
	if got.State != StateQueued || got.Hash != hashOf("body two") || got.Seq != 3 ||
		got.Role != "fix" || got.Target != "src/new" || got.Description != "second try" {
		t.Errorf("new attempt = %+v; want queued, seq 3, the new hash, role, target and description", got)
	}
	if got.Error != "" || got.Code != "" || got.Diff != "" || got.Files != nil || !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() {
		t.Errorf("new attempt keeps the failed attempt's outcome: %+v", got)
	}
	if got.ReceivedAt.Before(failed.FinishedAt) {
		t.Errorf("ReceivedAt = %v, before the first attempt finished (%v)", got.ReceivedAt, failed.FinishedAt)
	}
	if g, _ := s.Get("P1"); !reflect.DeepEqual(g, got) {
		t.Errorf("Get = %+v, want %+v", g, got)
	}
	if body, err := s.Body("P1"); err != nil || string(body) != "body two" {
		t.Errorf("Body = %q, %v; want the new body", body, err)
	}
	// The queue order: Q was queued before the new attempt.
	if n, err := s.Next(context.Background()); err != nil || n.ID != "Q" {
		t.Fatalf("Next = %s, %v; want Q, queued first", n.ID, err)
	}
	mustUpdate(t, s, "Q", setState(StateApplying))
	mustUpdate(t, s, "Q", setState(StateApplied))
	if n, err := s.Next(context.Background()); err != nil || n.ID != "P1" {
		t.Fatalf("Next = %s, %v; want the new attempt of P1", n.ID, err)
	}
	// Newest first: the new attempt is the newest patch.
	if ps, _ := s.List("", 10, ""); len(ps) != 2 || ps[0].ID != "P1" || ps[1].ID != "Q" {
		t.Errorf("List = %v, want P1 then Q", idsOf(ps))
	}
	if st := s.Stats(); st.Total != 2 || st.Failed != 0 || st.Queued != 1 || st.Applied != 1 {
		t.Errorf("Stats = %+v, want 2 patches: 1 queued, 1 applied", st)
	}
	// Its outcome is its own, the history stays.
	done := mustUpdate(t, s, "P1", setState(StateApplying))
	done = mustUpdate(t, s, "P1", setState(StateApplied))
	if done.State != StateApplied || !reflect.DeepEqual(done.Attempts, want) {
		t.Errorf("applied attempt = %+v, want applied with the first attempt kept", done)
	}
}

func idsOf(ps []Patch) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// TestResubmitRules: only a failed patch takes a new body; the same body
// again is the duplicate answer, whatever the state.
func TestResubmitRules(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for _, st := range []State{StateQueued, StateApplying, StateApplied, StateReverted} {
		id := "in-" + string(st)
		mustSubmit(t, s, id, "one")
		switch st {
		case StateApplying:
			mustUpdate(t, s, id, setState(StateApplying))
		case StateApplied:
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, setState(StateApplied))
		case StateReverted:
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, setState(StateApplied))
			mustUpdate(t, s, id, setState(StateReverted))
		}
		if _, _, err := resubmit(t, s, id, "two"); !errors.Is(err, ErrConflict) {
			t.Errorf("Submit(%s, another body) = %v, want ErrConflict", st, err)
		}
	}
	mustSubmit(t, s, "F", "one")
	failPatch(t, s, "F", "no match", "match_not_found")
	got, created, err := resubmit(t, s, "F", "one")
	if err != nil || created || got.State != StateFailed || got.Attempts != nil {
		t.Errorf("Submit(failed, same body) = %+v, created %v, %v; want the failed patch, not created", got, created, err)
	}
	// Two new bodies at once: one is the new attempt, the other a conflict
	// with it (it is queued now).
	if _, created, err := resubmit(t, s, "F", "two"); err != nil || !created {
		t.Fatalf("Submit(failed, two) = %v, %v", created, err)
	}
	if _, _, err := resubmit(t, s, "F", "three"); !errors.Is(err, ErrConflict) {
		t.Errorf("Submit(queued again, three) = %v, want ErrConflict", err)
	}
	// A dropped patch takes a new body too.
	mustSubmit(t, s, "D", "one")
	if _, err := s.Drop(context.Background(), "D"); err != nil {
		t.Fatal(err)
	}
	got, created, err = resubmit(t, s, "D", "two")
	if err != nil || !created || len(got.Attempts) != 1 || got.Attempts[0].Code != CodeDropped {
		t.Errorf("Submit(dropped, another body) = %+v, created %v, %v; want a new attempt after the dropped one", got, created, err)
	}
}

// TestResubmitEvent: a new attempt is an event of its own, with its new
// seq and state queued.
func TestResubmitEvent(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mustSubmit(t, s, "P1", "one")
	failPatch(t, s, "P1", "no", "match_not_found")
	after := s.LastEventID()
	sub, err := s.Subscribe(t.Context(), after)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := resubmit(t, s, "P1", "two")
	if err != nil {
		t.Fatal(err)
	}
	// A batch's events are numbered just after its callers are answered:
	// the failure's may come after LastEventID was read.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-sub.C:
			if e.Event == "patch.failed" {
				continue
			}
			if e.Event != "patch.resubmitted" || e.ID != "P1" || e.Seq != got.Seq || e.State != StateQueued || e.Error != "" {
				t.Errorf("event = %+v, want patch.resubmitted of P1, seq %d, queued", e, got.Seq)
			}
			return
		case <-timeout:
			t.Fatal("no event for the new attempt")
		}
	}
}

// TestResubmitReopen: a new attempt, its body and its history are read
// back after a restart, with the journal in one segment and in many.
func TestResubmitReopen(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(map[bool]string{false: "replay", true: "segments"}[compact], func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{}
			if compact {
				opts.SegmentBytes = 1
			}
			s, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			mustSubmit(t, s, "P1", "one")
			failPatch(t, s, "P1", "first failure", "match_not_found")
			mustSubmit(t, s, "Q", "q")
			if _, _, err := resubmit(t, s, "P1", "two"); err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, s, "P1", setState(StateApplying))
			failPatch2 := mustUpdate(t, s, "P1", func(p *Patch) { p.State, p.Error, p.Code = StateFailed, "second failure", "check_failed" })
			third, _, err := resubmit(t, s, "P1", "three")
			if err != nil {
				t.Fatal(err)
			}
			if len(third.Attempts) != 2 || third.Attempts[1].Number != 2 || third.Attempts[1].Error != "second failure" ||
				third.Attempts[1].FinishedAt != failPatch2.FinishedAt {
				t.Fatalf("third attempt's history = %+v", third.Attempts)
			}
			// Updates after the new attempt: superseded records.
			for range 6 {
				mustUpdate(t, s, "Q", func(p *Patch) { p.Notes = append(p.Notes, "n") })
			}
			want, _ := s.Get("P1")
			wantQ, _ := s.Get("Q")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := openTest(t, dir, Options{})
			got, ok := r.Get("P1")
			if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("after reopen Get(P1) = %+v\nwant %+v", got, want)
			}
			if gotQ, _ := r.Get("Q"); !reflect.DeepEqual(gotQ, wantQ) {
				t.Errorf("after reopen Get(Q) = %+v\nwant %+v", gotQ, wantQ)
			}
			if body, err := r.Body("P1"); err != nil || string(body) != "three" {
				t.Errorf("after reopen Body(P1) = %q, %v; want the third body", body, err)
			}
			if n, err := r.Next(context.Background()); err != nil || n.ID != "Q" {
				t.Errorf("after reopen Next = %s, %v; want Q first", n.ID, err)
			}
			if ps, _ := r.List("", 10, ""); !reflect.DeepEqual(idsOf(ps), []string{"P1", "Q"}) {
				t.Errorf("after reopen List = %v, want [P1 Q]", idsOf(ps))
			}
			// A new patch numbers after the new attempt.
			if p := mustSubmit(t, r, "R", "r"); p.Seq <= want.Seq {
				t.Errorf("after reopen a new patch has seq %d, not after the new attempt's %d", p.Seq, want.Seq)
			}
		})
	}
}

// TestResubmitKeepsLatest: a patch keeps its latest MaxAttempts earlier
// attempts, numbered, each error cut to maxAttemptError bytes.
func TestResubmitKeepsLatest(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	mustSubmit(t, s, "P", "body 0")
	long := strings.Repeat("é", maxAttemptError)
	for i := 1; i <= MaxAttempts+3; i++ {
		failPatch(t, s, "P", long, "check_failed")
		if _, _, err := resubmit(t, s, "P", "body "+strings.Repeat("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := s.Get("P")
	if len(p.Attempts) != MaxAttempts {
		t.Fatalf("%d attempts kept, want %d", len(p.Attempts), MaxAttempts)
	}
	if first, last := p.Attempts[0].Number, p.Attempts[MaxAttempts-1].Number; first != 4 || last != MaxAttempts+3 {
		t.Errorf("attempts kept are %d to %d, want 4 to %d", first, last, MaxAttempts+3)
	}
	if e := p.Attempts[0].Error; len(e) > maxAttemptError || !strings.HasSuffix(e, "…") || !strings.HasPrefix(e, "éé") {
		t.Errorf("a long error is kept as %d bytes (%.20q…), want at most %d, cut with …", len(e), e, maxAttemptError)
	}
}

// TestUpdateKeepsAttempts: an Update cannot rewrite a patch's history.
func TestUpdateKeepsAttempts(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mustSubmit(t, s, "P", "one")
	failPatch(t, s, "P", "no", "x")
	if _, _, err := resubmit(t, s, "P", "two"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(context.Background(), "P", func(p *Patch) error { p.Attempts = nil; return nil })
	if err == nil {
		t.Errorf("Update dropping the attempts = nil error, want a refusal")
	}
	if p, _ := s.Get("P"); len(p.Attempts) != 1 {
		t.Errorf("attempts after the refused update: %+v", p.Attempts)
	}
}

// TestResubmitForgetsDeaths: a patch whose planning killed the daemon
// twice, dropped (with no daemon running) and sent again fixed, is
// planned: the deaths counted against the dropped body are not the new
// attempt's. Without this the new attempt failed at once as crashed.
func TestResubmitForgetsDeaths(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	mustSubmit(t, s, "X", "kills the daemon")
	s.Close()
	for i := range 2 {
		s := openTest(t, dir, Options{})
		if n, err := s.BeginAttempt("X"); err != nil || n != i {
			t.Fatalf("BeginAttempt after %d deaths = %d, %v", i, n, err)
		}
		s.Close() // as a dying process leaves it
	}
	s = openTest(t, dir, Options{})
	if _, err := s.Drop(context.Background(), "X"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := resubmit(t, s, "X", "fixed"); err != nil || !created {
		t.Fatalf("Submit(X, fixed) = %v, %v", created, err)
	}
	s.Close()
	s = openTest(t, dir, Options{})
	if n, err := s.BeginAttempt("X"); err != nil || n != 0 {
		t.Errorf("BeginAttempt of the new attempt = %d deaths, %v; want 0", n, err)
	}
}

// TestResubmitAcrossCheckpoint: a failed patch sent again before the
// checkpoint after its failure leaves index.db with its new attempt
// only, whether the checkpoint that follows is written by the daemon
// that took the new attempt or by the next Open's replay. Builds writing
// index.db formats 3 and 4 left the earlier attempt in the live chunks,
// queued as of the checkpoint before: a later Open put it back in the
// queue, with its old Seq and body, and the worker applied it again.
func TestResubmitAcrossCheckpoint(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(map[bool]string{false: "checkpoint", true: "replay"}[replay], func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{NoSync: true, CheckpointInterval: time.Hour}
			fail := errors.New("no checkpoint: the daemon was killed")
			var crash atomic.Bool
			opts.ckFail = func() error {
				if crash.Load() {
					return fail
				}
				return nil
			}
			s := openTest(t, dir, opts)
			mustSubmit(t, s, "P1", "one")
			if err := s.checkpoint(); err != nil {
				t.Fatal(err)
			}
			failPatch(t, s, "P1", "search text not found", "match_not_found")
			second, _, err := resubmit(t, s, "P1", "two")
			if err != nil {
				t.Fatal(err)
			}
			if replay {
				// index.db stays as of P1 queued: the next Open replays
				// the failure and the new attempt onto it.
				crash.Store(true)
			}
			s.Close()
			crash.Store(false)

			r := openTest(t, dir, opts)
			if err := r.checkpoint(); err != nil {
				t.Fatal(err)
			}
			if got := liveIndex(t, r); len(got) != 1 || got[0].id != "P1" || got[0].key != second.Seq {
				t.Fatalf("live chunks = %+v, want P1's new attempt (Seq %d) alone", got, second.Seq)
			}
			n, err := r.Next(context.Background())
			if err != nil || n.Seq != second.Seq {
				t.Fatalf("Next = %s Seq %d, %v; want the new attempt, Seq %d", n.ID, n.Seq, err, second.Seq)
			}
			if body, err := r.Body("P1"); err != nil || string(body) != "two" {
				t.Fatalf("Body(P1) = %q, %v; want the new attempt's", body, err)
			}
			mustUpdate(t, r, "P1", setState(StateApplying))
			mustUpdate(t, r, "P1", setState(StateApplied))
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}

			again := openTest(t, dir, opts)
			if got := liveIndex(t, again); len(got) != 0 {
				t.Errorf("live chunks after P1 was applied = %+v, want none", got)
			}
			if p, ok := again.Get("P1"); !ok || p.State != StateApplied || p.Seq != second.Seq {
				t.Errorf("Get(P1) = %v %s Seq %d, want applied, Seq %d", ok, p.State, p.Seq, second.Seq)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if n, err := again.Next(ctx); err == nil {
				t.Errorf("Next after P1 was applied = %s Seq %d (%s), want nothing queued", n.ID, n.Seq, n.State)
			}
		})
	}
}
