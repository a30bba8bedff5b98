package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLogger sends store warnings to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openTest opens a store that is closed at the end of the test.
func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSubmit(t testing.TB, s *Store, id, body string) Patch {
	t.Helper()
	p, created, err := s.Submit(context.Background(), Patch{ID: id, Role: "ui_patch", Target: "src/" + id}, []byte(body))
	if err != nil || !created {
		t.Fatalf("Submit(%q) = created %v, %v; want created", id, created, err)
	}
	return p
}

func mustUpdate(t testing.TB, s *Store, id string, fn func(*Patch)) Patch {
	t.Helper()
	p, err := s.Update(context.Background(), id, func(p *Patch) error { fn(p); return nil })
	if err != nil {
		t.Fatalf("Update(%q) = %v", id, err)
	}
	return p
}

func setState(st State) func(*Patch) { return func(p *Patch) { p.State = st } }

func TestSubmitGet(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	before := time.Now()
	p, created, err := s.Submit(context.Background(), Patch{
		ID: "P8.13.22", Role: "ui_patch", Target: "src/app.py", Description: "fix",
		State: StateApplied, Error: "ignored", Seq: 99,
	}, []byte(`{"id":"P8.13.22"}`))
	if err != nil || !created {
		t.Fatalf("Submit = created %v, %v; want created, nil", created, err)
	}
	if p.Seq != 1 || p.State != StateQueued || p.Error != "" {
		t.Errorf("Submit = seq %d state %q error %q, want 1 queued \"\"", p.Seq, p.State, p.Error)
	}
	if len(p.Hash) != 64 {
		t.Errorf("Hash = %q, want 64 hex digits", p.Hash)
	}
	if p.ReceivedAt.Before(before.Add(-time.Second)) || p.ReceivedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("ReceivedAt = %v, want about %v", p.ReceivedAt, before)
	}
	got, ok := s.Get("P8.13.22")
	if !ok || !reflect.DeepEqual(got, p) {
		t.Errorf("Get = %+v, %v; want %+v, true", got, ok, p)
	}
	if _, ok := s.Get("nope"); ok {
		t.Errorf("Get(nope) found a patch, want none")
	}
	body, err := s.Body("P8.13.22")
	if err != nil || string(body) != `{"id":"P8.13.22"}` {
		t.Errorf("Body = %q, %v; want the submitted body", body, err)
	}
	if _, err := s.Body("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Body(nope) = %v, want ErrNotFound", err)
	}
	p2 := mustSubmit(t, s, "second", "x")
	if p2.Seq != 2 {
		t.Errorf("second Seq = %d, want 2", p2.Seq)
	}
}

func TestSubmitInvalidID(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for _, id := range []string{"", strings.Repeat("x", MaxIDLen+1), "a\x00b", "bad\xff"} {
		if _, _, err := s.Submit(context.Background(), Patch{ID: id}, nil); err == nil {
			t.Errorf("Submit(id %q) = nil error, want an error", id)
		}
	}
	// Ids that are odd file names are fine: the store escapes them.
	for _, id := range []string{"../x", ".", "a/b", "é"} {
		if _, _, err := s.Submit(context.Background(), Patch{ID: id}, nil); err != nil {
			t.Errorf("Submit(id %q) = %v, want nil", id, err)
		}
	}
}

func TestSubmitIdempotent(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	first := mustSubmit(t, s, "P1", "body one")
	tests := []struct {
		name        string
		body        string
		wantCreated bool
		wantErr     error
	}{
		{name: "same body", body: "body one"},
		{name: "other body", body: "body two", wantErr: ErrConflict},
		{name: "same body again", body: "body one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := s.Submit(context.Background(), Patch{ID: "P1"}, []byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Submit(P1, %q) error = %v, want %v", tt.body, err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "P1") {
					t.Errorf("error %q does not name the id P1", err)
				}
				return
			}
			if created != tt.wantCreated || !reflect.DeepEqual(got, first) {
				t.Errorf("Submit(P1, %q) = %+v, created %v; want %+v, created %v", tt.body, got, created, first, tt.wantCreated)
			}
		})
	}
	if st := s.Stats(); st.Total != 1 {
		t.Errorf("Stats().Total = %d, want 1", st.Total)
	}
}

// TestSubmitSameIDConcurrently checks that racing submissions of one id
// create it once, whatever the interleaving.
func TestSubmitSameIDConcurrently(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, conflicts := 0, 0
	for i := range 32 {
		wg.Go(func() {
			body := "same"
			if i%4 == 3 {
				body = "other"
			}
			_, c, err := s.Submit(context.Background(), Patch{ID: "X"}, []byte(body))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrConflict):
				conflicts++
			case err != nil:
				t.Errorf("Submit = %v", err)
			case c:
				created++
			}
		})
	}
	wg.Wait()
	if created != 1 || conflicts != 8 && conflicts != 24 {
		t.Errorf("created %d, conflicts %d; want 1 and 8 (or 24 if the other body won)", created, conflicts)
	}
}

func TestListPagination(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	for i := 1; i <= 7; i++ {
		mustSubmit(t, s, fmt.Sprintf("p%d", i), fmt.Sprint(i))
	}
	for _, id := range []string{"p2", "p5"} {
		mustUpdate(t, s, id, setState(StateFailed))
	}
	tests := []struct {
		name  string
		limit int
		state State
		want  [][]string // pages
	}{
		{name: "all in pages of 3", limit: 3, want: [][]string{{"p7", "p6", "p5"}, {"p4", "p3", "p2"}, {"p1"}}},
		{name: "exact pages", limit: 7, want: [][]string{{"p7", "p6", "p5", "p4", "p3", "p2", "p1"}}},
		{name: "default limit", limit: 0, want: [][]string{{"p7", "p6", "p5", "p4", "p3", "p2", "p1"}}},
		{name: "failed only", limit: 1, state: StateFailed, want: [][]string{{"p5"}, {"p2"}}},
		{name: "queued", limit: 4, state: StateQueued, want: [][]string{{"p7", "p6", "p4", "p3"}, {"p1"}}},
		{name: "none applied", limit: 4, state: StateApplied, want: [][]string{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor := ""
			for i, want := range tt.want {
				ps, next := s.List(cursor, tt.limit, tt.state)
				var got []string
				for _, p := range ps {
					got = append(got, p.ID)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("page %d: List(%q, %d, %q) = %v, want %v", i, cursor, tt.limit, tt.state, got, want)
				}
				last := i == len(tt.want)-1
				if (next == "") != last {
					t.Fatalf("page %d: next cursor %q, want it empty only on the last page", i, next)
				}
				cursor = next
			}
		})
	}
	if ps, next := s.List("garbage", 3, ""); len(ps) != 0 || next != "" {
		t.Errorf("List(garbage) = %d patches, %q; want none", len(ps), next)
	}
}

func TestUpdateTransitions(t *testing.T) {
	// Every pair of states, checked against the life cycle.
	allowed := map[[2]State]bool{
		{StateQueued, StateApplying}:  true,
		{StateQueued, StateFailed}:    true,
		{StateApplying, StateApplied}: true,
		{StateApplying, StateFailed}:  true,
		{StateApplying, StateQueued}:  true,
		{StateApplied, StateReverted}: true,
	}
	// How to bring a new patch into each state.
	paths := map[State][]State{
		StateQueued:   nil,
		StateApplying: {StateApplying},
		StateApplied:  {StateApplying, StateApplied},
		StateFailed:   {StateFailed},
		StateReverted: {StateApplying, StateApplied, StateReverted},
	}
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	n := 0
	for _, from := range States() {
		for _, to := range append(States(), "bogus") {
			want := from == to || allowed[[2]State{from, to}]
			t.Run(fmt.Sprintf("%s to %s", from, to), func(t *testing.T) {
				n++
				id := fmt.Sprintf("t%d", n)
				mustSubmit(t, s, id, id)
				for _, st := range paths[from] {
					mustUpdate(t, s, id, setState(st))
				}
				got, err := s.Update(context.Background(), id, func(p *Patch) error {
					p.State = to
					p.Error = "why"
					return nil
				})
				if (err == nil) != want {
					t.Fatalf("Update %s → %s error = %v, want allowed %v", from, to, err, want)
				}
				stored, _ := s.Get(id)
				if err != nil {
					if to.Valid() && !errors.Is(err, ErrInvalidTransition) {
						t.Errorf("error = %v, want ErrInvalidTransition", err)
					}
					if stored.State != from || stored.Error != "" {
						t.Errorf("after refused update: state %q error %q, want %q and none", stored.State, stored.Error, from)
					}
					return
				}
				if got.State != to || got.Error != "why" || !reflect.DeepEqual(stored, got) {
					t.Errorf("Update = %+v, stored %+v; want state %q error why", got, stored, to)
				}
			})
		}
	}
}

func TestUpdateTimingsAndFields(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	mustSubmit(t, s, "P", "b")
	p := mustUpdate(t, s, "P", setState(StateApplying))
	if p.StartedAt.IsZero() {
		t.Errorf("StartedAt is zero after → applying")
	}
	files := []FileChange{{Path: "a.go", OldHash: "aa", NewHash: "bb", OldMode: 0o644, Existed: true}}
	p = mustUpdate(t, s, "P", func(p *Patch) {
		p.State = StateApplied
		p.Diff = "--- a\n+++ b\n"
		p.Files = files
		p.Notes = []string{"a.go: whitespace ignored"}
	})
	if p.FinishedAt.IsZero() || len(p.Notes) != 1 || !reflect.DeepEqual(p.Files, files) {
		t.Errorf("after → applied: %+v", p)
	}
	// The returned copy is the caller's: changing it must not reach the store.
	p.Files[0].Path = "changed"
	if got, _ := s.Get("P"); got.Files[0].Path != "a.go" {
		t.Errorf("store copy changed through a returned patch: %q", got.Files[0].Path)
	}
	p = mustUpdate(t, s, "P", setState(StateReverted))
	if p.RevertedAt.IsZero() {
		t.Errorf("RevertedAt is zero after → reverted")
	}

	immutable := map[string]func(*Patch){
		"id":   func(p *Patch) { p.ID = "other" },
		"seq":  func(p *Patch) { p.Seq++ },
		"hash": func(p *Patch) { p.Hash = "x" },
	}
	for name, fn := range immutable {
		if _, err := s.Update(context.Background(), "P", func(p *Patch) error { fn(p); return nil }); err == nil {
			t.Errorf("Update changing %s = nil error, want an error", name)
		}
	}
	boom := errors.New("boom")
	if _, err := s.Update(context.Background(), "P", func(*Patch) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Update with failing fn = %v, want %v", err, boom)
	}
	if _, err := s.Update(context.Background(), "nope", func(*Patch) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update(nope) = %v, want ErrNotFound", err)
	}
	func() {
		defer func() { recover() }()
		s.Update(context.Background(), "P", func(*Patch) error { panic("worker bug") })
	}()
	// The store still works for the id after refused updates and a panic.
	if _, err := s.Update(context.Background(), "P", func(p *Patch) error { p.Error = "note"; return nil }); err != nil {
		t.Errorf("Update after refusals = %v", err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var want []Patch
	for i := range 20 {
		id := fmt.Sprintf("r%02d", i)
		mustSubmit(t, s, id, strings.Repeat(id, i*100))
		switch i % 4 {
		case 1:
			mustUpdate(t, s, id, setState(StateApplying))
		case 2:
			mustUpdate(t, s, id, setState(StateFailed))
		case 3:
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, func(p *Patch) {
				p.State = StateApplied
				p.Diff = "diff " + id
				p.Files = []FileChange{{Path: id, NewHash: "h", Existed: false}}
			})
		}
	}
	want, _ = s.List("", 100, "")
	wantStats := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, _, err := s.Submit(context.Background(), Patch{ID: "late"}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}

	s2 := openTest(t, dir, Options{})
	got, _ := s2.List("", 100, "")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen List =\n%+v\nwant\n%+v", got, want)
	}
	gotStats := s2.Stats()
	gotStats.Batches, gotStats.Records, wantStats.Batches, wantStats.Records = 0, 0, 0, 0
	if gotStats != wantStats {
		t.Errorf("after reopen Stats = %+v, want %+v", gotStats, wantStats)
	}
	for _, p := range want {
		body, err := s2.Body(p.ID)
		if err != nil || !bytes.Equal(body, []byte(strings.Repeat(p.ID, int(p.Seq-1)*100))) {
			t.Errorf("Body(%s) = %d bytes, %v; want the submitted body", p.ID, len(body), err)
		}
	}
	p := mustSubmit(t, s2, "after", "x")
	if p.Seq != 21 {
		t.Errorf("Seq after reopen = %d, want 21", p.Seq)
	}
}

func TestOpenTwice(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatalf("second Open of %s succeeded, want a lock error", dir)
	}
}

func TestNext(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d"} {
		mustSubmit(t, s, id, id)
	}
	mustUpdate(t, s, "c", setState(StateApplying)) // left applying by a "crash"
	mustUpdate(t, s, "a", setState(StateFailed))
	s.Close()

	s = openTest(t, dir, Options{NoSync: true})
	next := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next = %v", err)
		}
		return p.ID + ":" + string(p.State)
	}
	steps := []struct {
		want string
		then func()
	}{
		{"c:applying", func() { mustUpdate(t, s, "c", setState(StateQueued)) }},
		{"b:queued", func() {}}, // not claimed: the same again
		{"b:queued", func() { mustUpdate(t, s, "b", setState(StateApplying)) }},
		{"c:queued", func() { mustUpdate(t, s, "c", setState(StateApplying)) }},
		{"d:queued", func() { mustUpdate(t, s, "d", setState(StateApplying)) }},
	}
	for i, st := range steps {
		if got := next(); got != st.want {
			t.Fatalf("step %d: Next = %s, want %s", i, got, st.want)
		}
		st.then()
	}

	// Nothing queued now: Next blocks until a submission arrives.
	got := make(chan string)
	go func() {
		p, err := s.Next(ctx)
		got <- fmt.Sprint(p.ID, err)
	}()
	select {
	case g := <-got:
		t.Fatalf("Next returned %s with nothing queued", g)
	case <-time.After(20 * time.Millisecond):
	}
	mustSubmit(t, s, "e", "e")
	if g := <-got; g != "e<nil>" {
		t.Errorf("Next = %s, want e", g)
	}

	cctx, cancel := context.WithCancel(ctx)
	mustUpdate(t, s, "e", setState(StateApplying))
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := s.Next(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with canceled ctx = %v, want context.Canceled", err)
	}
	go func() { time.Sleep(10 * time.Millisecond); s.Close() }()
	if _, err := s.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Next on closing store = %v, want ErrClosed", err)
	}
}

func TestConcurrentSubmit(t *testing.T) {
	const workers, each = 64, 40
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				p, created, err := s.Submit(context.Background(), Patch{ID: id}, []byte(id))
				if err != nil || !created {
					t.Errorf("Submit(%s) = %v, created %v", id, err, created)
					return
				}
				seqs[w] = append(seqs[w], p.Seq)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d records in %d batches", st.Records, st.Batches)
	s.Close()

	s = openTest(t, dir, Options{})
	seen := make(map[uint64]string)
	for w := range workers {
		if !sort.SliceIsSorted(seqs[w], func(i, j int) bool { return seqs[w][i] < seqs[w][j] }) {
			t.Errorf("worker %d got seqs %v, want increasing", w, seqs[w])
		}
		for i, seq := range seqs[w] {
			id := fmt.Sprintf("w%d-%d", w, i)
			if other, dup := seen[seq]; dup {
				t.Errorf("seq %d given to %s and %s", seq, other, id)
			}
			seen[seq] = id
			p, ok := s.Get(id)
			if !ok || p.Seq != seq {
				t.Errorf("after reopen Get(%s) = seq %d, %v; want seq %d", id, p.Seq, ok, seq)
			}
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct seqs, want %d", len(seen), workers*each)
	}
	for seq := uint64(1); seq <= workers*each; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Errorf("seq %d missing: want 1..%d without gaps", seq, workers*each)
			break
		}
	}
}
