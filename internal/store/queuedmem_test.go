package store

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestQueuedPatchHeap: a queued patch is held in memory until the worker
// takes it, so a backlog's memory is this much per patch (the benchmark's
// resident size under load follows it). The entry of a queued patch has
// no outcome part; with it, it took ~860 bytes a patch.
func TestQueuedPatchHeap(t *testing.T) {
	if size := unsafe.Sizeof(entry{}); size > 240 {
		t.Errorf("an entry is %d bytes, want at most 240 (the allocator's size class it fits)", size)
	}
	s, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 40000
	// As the webhook decodes them: each patch's strings its own.
	desc := "Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place."
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ingest-64-%d-%d", i%64, i)
	}
	body := make([]byte, 450)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		copy(body, id)
		p := Patch{ID: id, Role: strings.Clone("ui_patch"), Target: strings.Clone("app/version.py"), Description: strings.Clone(desc)}
		if _, _, err := s.Submit(context.Background(), p, body); err != nil {
			t.Fatal(err)
		}
	}
	// What changed since the last checkpoint waits for the next one (a
	// second at most) in its snapshot: not the backlog's.
	if err := s.checkpoint(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ids)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("heap per queued patch: %.0f bytes (%d patches)", per, n)
	if st := s.Stats(); st.Queued != n {
		t.Fatalf("%d queued, want %d", st.Queued, n)
	}
	if per > 640 {
		t.Errorf("a queued patch takes %.0f bytes of heap, want at most 640", per)
	}
}

// TestEntryKeepsEveryPatchField: an entry splits a Patch into core and
// cold; a field of Patch that neither kept would be lost from memory and
// from every record written after (an update writes the patch whole).
// Each field alone, then all of them, must come back as set.
func TestEntryKeepsEveryPatchField(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	set := func(f reflect.Value, name string) {
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(at))
		case f.Kind() == reflect.String:
			f.SetString("x-" + name)
		case f.Kind() == reflect.Uint64 || f.Kind() == reflect.Uint32:
			f.SetUint(7)
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(7)
		case f.Kind() == reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("Patch.%s: a %s, which this test does not know how to set", name, f.Type())
		}
	}
	typ := reflect.TypeOf(Patch{})
	var all Patch
	for i := range typ.NumField() {
		var p Patch
		set(reflect.ValueOf(&p).Elem().Field(i), typ.Field(i).Name)
		set(reflect.ValueOf(&all).Elem().Field(i), typ.Field(i).Name)
		var e entry
		e.setPatch(p)
		if got := e.patch(); !reflect.DeepEqual(got, p) {
			t.Errorf("Patch.%s is not kept by an entry:\n got %+v\nwant %+v", typ.Field(i).Name, got, p)
		}
	}
	var e entry
	e.setPatch(all)
	if got := e.patch(); !reflect.DeepEqual(got, all) {
		t.Errorf("a patch with every field set:\n got %+v\nwant %+v", got, all)
	}
	if c := e.copyEntry(); !reflect.DeepEqual(c.patch(), all) {
		t.Errorf("a copy of the entry: %+v", c.patch())
	}
	var q entry
	q.setPatch(Patch{ID: "q", Seq: 1, Hash: "h", State: StateQueued, ReceivedAt: at})
	if q.cold != nil {
		t.Errorf("a queued patch's entry has an outcome part: %+v", *q.cold)
	}
}
