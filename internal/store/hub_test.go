package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// collect reads n events from sub, failing the test if they do not come
// within a generous bound.
func collect(t *testing.T, sub *Subscription, n int) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed after %d of %d events: %v", len(got), n, sub.Err())
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("got %d of %d events in 30 s", len(got), n)
		}
	}
	return got
}

// checkNumbers fails unless evs are numbered from+1, from+2, … in order.
func checkNumbers(t *testing.T, evs []Event, from uint64) {
	t.Helper()
	for i, e := range evs {
		if want := from + uint64(i) + 1; e.EventID != want {
			t.Fatalf("event %d = %+v, want event_id %d", i, e, want)
		}
	}
}

func TestSubscribeOrderAndNoLoss(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: filepath.Join(dir, "events.jsonl"), NoSync: true})
	const writers, perWriter = 8, 50
	const total = writers * perWriter * 2 // submitted, then applying
	ctx := t.Context()
	var subs []*Subscription
	for range 4 {
		sub, err := s.Subscribe(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := s.Submit(ctx, Patch{ID: id}, []byte(id)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Update(ctx, id, func(p *Patch) error { p.State = StateApplying; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Subscribers joining while commits run get the backlog, then live.
	late, err := s.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, late)
	results := make([][]Event, len(subs))
	var rg sync.WaitGroup
	for i, sub := range subs {
		rg.Go(func() { results[i] = collect(t, sub, total) })
	}
	wg.Wait()
	rg.Wait()
	for i, evs := range results {
		checkNumbers(t, evs, 0)
		submitted := map[string]bool{}
		for _, e := range evs {
			switch e.Event {
			case "patch.submitted":
				submitted[e.ID] = true
			case "patch.applying":
				if !submitted[e.ID] {
					t.Fatalf("subscriber %d: %s applying before submitted", i, e.ID)
				}
			}
		}
		if len(submitted) != writers*perWriter {
			t.Errorf("subscriber %d saw %d patches submitted, want %d", i, len(submitted), writers*perWriter)
		}
	}
	if got := s.LastEventID(); got != total {
		t.Errorf("LastEventID() = %d, want %d", got, total)
	}
	// The file has the same numbers, in the same order.
	file := readEvents(t, filepath.Join(dir, "events.jsonl"))
	checkNumbers(t, file, 0)
	if len(file) != total {
		t.Errorf("events.jsonl has %d lines, want %d", len(file), total)
	}
}

func TestEventNumbersContinueAfterReopen(t *testing.T) {
	dir := t.TempDir()
	qdir, path := filepath.Join(dir, "queue"), filepath.Join(dir, "events.jsonl")
	for round := range 3 {
		s, err := Open(qdir, Options{EventsPath: path, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.LastEventID(), uint64(round*2); got != want {
			t.Errorf("round %d: LastEventID() after Open = %d, want %d", round, got, want)
		}
		id := fmt.Sprint("r", round)
		mustSubmit(t, s, id, id)
		mustUpdate(t, s, id, setState(StateApplying))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	checkNumbers(t, readEvents(t, path), 0)

	// Events older than this process's memory come from events.jsonl.
	s := openTest(t, qdir, Options{EventsPath: path})
	sub, err := s.Subscribe(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, sub, 3)
	checkNumbers(t, evs, 3)
	if evs[0].ID != "r1" || evs[0].Event != "patch.applying" || evs[2].ID != "r2" {
		t.Errorf("replayed %+v, want r1 applying, r2 submitted, r2 applying", evs)
	}
	mustSubmit(t, s, "live", "live")
	if e := collect(t, sub, 1)[0]; e.EventID != 7 || e.ID != "live" {
		t.Errorf("live event = %+v, want 7 for live", e)
	}
}

func TestEventNumberFromTornOrOldLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// An old line without a number, numbered ones, then a line a crash cut.
	log := `{"time":"2026-01-01T00:00:00Z","event":"patch.submitted","id":"old","seq":1,"state":"queued"}
{"event_id":41,"time":"2026-01-01T00:00:00Z","event":"patch.submitted","id":"a","seq":2,"state":"queued"}
{"event_id":42,"time":"2026-01-01T00:00:00Z","event":"patch.applying","id":"a","seq":2,"state":"applying"}
{"event_id":43,"time":"2026-01-01T00:0`
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: path})
	if got := s.LastEventID(); got != 42 {
		t.Errorf("LastEventID() = %d, want 42", got)
	}
	mustSubmit(t, s, "b", "b")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readEventsLenient(t, path)
	if last := evs[len(evs)-1]; last.EventID != 43 || last.ID != "b" {
		t.Errorf("last line = %+v, want event 43 for b on a line of its own", last)
	}
}

func TestSubscribeResumeReturnsExactlyLater(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	for i := range 10 {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	for _, after := range []uint64{0, 1, 5, 9, 10} {
		ctx, cancel := context.WithCancel(t.Context())
		sub, err := s.Subscribe(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		evs := collect(t, sub, int(10-after))
		checkNumbers(t, evs, after)
		select {
		case e := <-sub.C:
			t.Errorf("Subscribe(%d) gave an extra event %+v", after, e)
		case <-time.After(20 * time.Millisecond):
		}
		cancel()
		for range sub.C {
		}
		if !errors.Is(sub.Err(), context.Canceled) {
			t.Errorf("Err() after cancel = %v, want context.Canceled", sub.Err())
		}
	}
	if _, err := s.Subscribe(t.Context(), 11); !errors.Is(err, ErrEventsLost) {
		t.Errorf("Subscribe(11) with 10 events = %v, want ErrEventsLost", err)
	}
}

func TestSubscribeOlderThanKeptIsLost(t *testing.T) {
	// No events.jsonl: only the events kept in memory can be replayed.
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	for i := range eventRing + 10 {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	if _, err := s.Subscribe(t.Context(), 1); !errors.Is(err, ErrEventsLost) {
		t.Errorf("Subscribe(1) past the ring without a log = %v, want ErrEventsLost", err)
	}
	sub, err := s.Subscribe(t.Context(), 10)
	if err != nil {
		t.Fatalf("Subscribe(10), the oldest kept = %v", err)
	}
	checkNumbers(t, collect(t, sub, eventRing), 10)
}

func TestSlowSubscriberDoesNotBlockCommits(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: filepath.Join(dir, "events.jsonl"), NoSync: true})
	blocked, err := s.Subscribe(t.Context(), 0) // never read
	if err != nil {
		t.Fatal(err)
	}
	n := maxPending + 100
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, _, err := s.Submit(t.Context(), Patch{ID: fmt.Sprint("p", i)}, []byte("x")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%d submissions with a subscriber that reads nothing did not finish in 60 s", n)
	}
	// The reader gets what it was owed up to the drop, then why.
	var got []Event
	for e := range blocked.C {
		got = append(got, e)
	}
	if !errors.Is(blocked.Err(), ErrSlowSubscriber) {
		t.Fatalf("Err() = %v, want ErrSlowSubscriber", blocked.Err())
	}
	if len(got) == 0 {
		t.Fatal("dropped subscriber got no event before the drop")
	}
	checkNumbers(t, got, 0)
	// It resumes from the last one it saw and misses nothing.
	last := got[len(got)-1].EventID
	sub, err := s.Subscribe(t.Context(), last)
	if err != nil {
		t.Fatalf("Subscribe(%d) after the drop = %v", last, err)
	}
	checkNumbers(t, collect(t, sub, n-int(last)), last)
}

func TestSubscribeEndsOnClose(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	sub, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, s, "a", "a")
	s.Close()
	var got []Event
	for e := range sub.C {
		got = append(got, e)
	}
	if len(got) != 1 || !errors.Is(sub.Err(), ErrClosed) {
		t.Errorf("after Close: %d events, Err() = %v; want 1, ErrClosed", len(got), sub.Err())
	}
	if _, err := s.Subscribe(t.Context(), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

// readEventsLenient reads the event lines that parse, skipping others.
func readEventsLenient(t *testing.T, path string) []Event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		if e, ok := parseEventLine(line); ok {
			evs = append(evs, e)
		}
	}
	return evs
}

func TestScanBack(t *testing.T) {
	// Lines shorter and longer than the 64 KiB chunk, empty ones, and a
	// trailing part without newline, which is not a line.
	var data []byte
	var want []string
	for i, n := range []int{10, 0, 70 << 10, 3, 64<<10 - 1, 64 << 10, 1, 200 << 10, 5} {
		line := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, string(line))
		data = append(append(data, line...), '\n')
	}
	for _, tail := range []string{"", "torn"} {
		file := append(append([]byte(nil), data...), tail...)
		var got []string
		err := scanBack(bytes.NewReader(file), int64(len(file)), 1<<30, func(line []byte, off int64) bool {
			if !bytes.Equal(file[off:off+int64(len(line))], line) || file[off+int64(len(line))] != '\n' {
				t.Fatalf("line of %d bytes at %d is not the file's", len(line), off)
			}
			got = append(got, string(line))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("tail %q: %d lines, want %d", tail, len(got), len(want))
		}
		for i := range got {
			if w := want[len(want)-1-i]; got[i] != w {
				t.Errorf("tail %q: line %d from the end has %d bytes, want %d", tail, i, len(got[i]), len(w))
			}
		}
	}
	err := scanBack(bytes.NewReader(data), int64(len(data)), 100<<10, func([]byte, int64) bool { return true })
	if !errors.Is(err, errScanLimit) {
		t.Errorf("scanBack past its limit = %v, want errScanLimit", err)
	}
}

func TestReplayFromLongLog(t *testing.T) {
	// Replays that read events.jsonl back across many chunks.
	dir := t.TempDir()
	qdir, path := filepath.Join(dir, "queue"), filepath.Join(dir, "events.jsonl")
	s, err := Open(qdir, Options{EventsPath: path, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		id := fmt.Sprint("p", i)
		if _, _, err := s.Submit(t.Context(), Patch{ID: id, Description: string(bytes.Repeat([]byte("d"), 200))}, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	long := string(bytes.Repeat([]byte("e"), 100<<10))
	mustUpdate(t, s, "p7", func(p *Patch) { p.State = StateFailed; p.Error = long })
	s.Close()
	s = openTest(t, qdir, Options{EventsPath: path})
	if got := s.LastEventID(); got != n+1 {
		t.Fatalf("LastEventID() = %d, want %d", got, n+1)
	}
	for _, after := range []uint64{0, 1, 1500, n - 1} {
		ctx, cancel := context.WithCancel(t.Context())
		sub, err := s.Subscribe(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		evs := collect(t, sub, int(n+1-after))
		checkNumbers(t, evs, after)
		if last := evs[len(evs)-1]; last.ID != "p7" || last.Error != long {
			t.Errorf("Subscribe(%d): last event %s %s with %d bytes of error, want p7's failure", after, last.ID, last.Event, len(last.Error))
		}
		cancel()
	}
}

func TestReplayStopsAtGap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// Event 3's line was lost (a full disk); 4 is there.
	var log string
	for _, n := range []int{1, 2, 4} {
		log += fmt.Sprintf(`{"event_id":%d,"time":"2026-01-01T00:00:00Z","event":"patch.submitted","id":"p%d","seq":%d,"state":"queued"}`+"\n", n, n, n)
	}
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, filepath.Join(dir, "queue"), Options{EventsPath: path})
	sub, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkNumbers(t, collect(t, sub, 2), 0)
	if e, ok := <-sub.C; ok {
		t.Fatalf("after the gap: %+v, want the subscription ended", e)
	}
	if err := sub.Err(); !errors.Is(err, ErrEventsLost) || !strings.Contains(err.Error(), "event 3 is not in events.jsonl") {
		t.Errorf("Err() = %v, want ErrEventsLost naming event 3", err)
	}
	sub, err = s.Subscribe(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	checkNumbers(t, collect(t, sub, 1), 3)
}

// TestLastEventIDCountsAnsweredSubmit: once Submit returns, LastEventID
// counts its event, so a subscription after it never replays it and a
// status read after an answer is current.
func TestLastEventIDCountsAnsweredSubmit(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for i := 1; i <= 200; i++ {
		id := fmt.Sprintf("p%d", i)
		if _, _, err := s.Submit(context.Background(), Patch{ID: id}, []byte(id)); err != nil {
			t.Fatal(err)
		}
		if got := s.LastEventID(); got != uint64(i) {
			t.Fatalf("after submit %d, LastEventID = %d", i, got)
		}
	}
}

// TestSubscribeFunc: a filtered subscription gets only the events it
// keeps, in order, whether they come from the event log (after a reopen),
// the in-memory ring or new commits; and the events it refuses do not
// count against it: a subscriber that reads nothing while more than
// maxPending patches are received is not dropped, and then gets the
// outcomes it asked for.
func TestSubscribeFunc(t *testing.T) {
	dir := t.TempDir()
	qdir, path := filepath.Join(dir, "queue"), filepath.Join(dir, "events.jsonl")
	s := openTest(t, qdir, Options{EventsPath: path, NoSync: true})
	failed := func(e *Event) bool { return e.Event == "patch.failed" }
	const before = eventRing + 500 // beyond the ring: the first are read back from the log
	for i := range before {
		id := fmt.Sprint("a", i)
		mustSubmit(t, s, id, id)
		if i%100 == 0 {
			mustUpdate(t, s, id, setState(StateFailed))
		}
	}
	s.Close()
	s = openTest(t, qdir, Options{EventsPath: path, NoSync: true})
	sub, err := s.SubscribeFunc(t.Context(), 0, failed)
	if err != nil {
		t.Fatal(err)
	}
	n := maxPending + 100
	for i := range n {
		mustSubmit(t, s, fmt.Sprint("b", i), "x")
	}
	mustUpdate(t, s, "b7", setState(StateFailed))
	want := []string{}
	for i := 0; i < before; i += 100 {
		want = append(want, fmt.Sprint("a", i))
	}
	want = append(want, "b7")
	got := collect(t, sub, len(want))
	var ids []string
	last := uint64(0)
	for _, e := range got {
		if e.Event != "patch.failed" || e.EventID <= last {
			t.Fatalf("event %+v after event %d: want patch.failed events in order", e, last)
		}
		last = e.EventID
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("filtered events of %v, want %v", ids, want)
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err() = %v: the %d events it refused counted against it", err, n)
	}
}
