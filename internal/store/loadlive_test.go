package store

import (
	"container/heap"
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"
)

// TestReopenBacklog: a backlog of queued patches, spread over several
// segments, with applying ones among them (whose newest record is later
// in the journal), comes back whole at the next Open, in order, from
// index.db's live chunks; a queued patch whose record was damaged since
// the checkpoint is left out, and only it.
func TestReopenBacklog(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, SegmentBytes: 256 << 10})
	const n = 3000
	want := make(map[string]Patch, n)
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("b-%04d", i)
		p := Patch{ID: id, Role: "role", Target: fmt.Sprintf("src/f%d.py", i%7), Description: fmt.Sprintf("patch %d of the backlog", i)}
		if _, _, err := s.Submit(ctx, p, []byte(fmt.Sprintf(`{"id":%q,"pad":"%0300d"}`, id, i))); err != nil {
			t.Fatal(err)
		}
	}
	// Every 100th taken by the worker: applying.
	for i := 0; i < n; i += 100 {
		id := fmt.Sprintf("b-%04d", i)
		if _, err := s.Update(ctx, id, func(p *Patch) error {
			p.State, p.StartedAt = StateApplying, time.Now()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		id := fmt.Sprintf("b-%04d", i)
		p, ok := s.Get(id)
		if !ok {
			t.Fatalf("%s not found", id)
		}
		want[id] = p
	}
	damaged := "b-1234"
	s.mu.Lock()
	at := s.idx.patches[damaged].meta
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if at.seg < 2 {
		t.Fatalf("the damaged patch is in segment %d; the test wants the backlog over several", at.seg)
	}
	// A byte of its meta changed on disk since the checkpoint.
	f, err := os.OpenFile(s.segPath(at.seg), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at.off+10); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, at.off+10); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s2 := openTest(t, dir, Options{NoSync: true, SegmentBytes: 256 << 10})
	if st := s2.Stats(); st.Queued+st.Applying != n {
		t.Errorf("counts: %d queued, %d applying; want %d in all", st.Queued, st.Applying, n)
	}
	for id, w := range want {
		got, ok := s2.Get(id)
		if id == damaged {
			continue // its record cannot be read: Get says so as it can
		}
		if !ok || !reflect.DeepEqual(got, w) {
			t.Fatalf("%s after reopen:\n got %+v\nwant %+v", id, got, w)
		}
	}
	// The worker gets the applying ones first, then the queue in order,
	// without the damaged one.
	var order []string
	for {
		s2.mu.Lock()
		e := s2.idx.next()
		if e != nil {
			order = append(order, e.p.ID)
			if e.p.State == StateApplying {
				s2.idx.recover = s2.idx.recover[1:]
			} else {
				heap.Pop(&s2.idx.queued)
			}
		}
		s2.mu.Unlock()
		if e == nil {
			break
		}
	}
	var wantOrder []string
	for i := 0; i < n; i += 100 {
		wantOrder = append(wantOrder, fmt.Sprintf("b-%04d", i))
	}
	for i := range n {
		if id := fmt.Sprintf("b-%04d", i); i%100 != 0 && id != damaged {
			wantOrder = append(wantOrder, id)
		}
	}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("the worker's order after reopen: %d patches, want %d (first %v)", len(order), len(wantOrder), order[:min(5, len(order))])
	}
}

// BenchmarkOpenBacklog measures what a start, restart or takeover waits
// for with 20,000 patches queued (their metas read back from the
// journal); "µs/queued" is that per queued patch. The README's figure
// for a restart with a backlog stands on it.
func BenchmarkOpenBacklog(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	desc := "Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place."
	body := make([]byte, 450)
	for i := range n {
		p := Patch{ID: fmt.Sprintf("q-%d", i), Role: "ui_patch", Target: "src/app.py", Description: desc}
		if _, _, err := s.Submit(context.Background(), p, body); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := Open(dir, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if q := s.Stats().Queued; q != n {
			b.Fatalf("%d queued after Open, want %d", q, n)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/queued")
}
