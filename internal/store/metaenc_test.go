package store

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestAppendMeta: appendMeta writes what json.Marshal writes, byte for
// byte, for records with every field set or empty and text of every kind
// (escapes, HTML characters, control characters, invalid UTF-8, U+2028).
func TestAppendMeta(t *testing.T) {
	check := func(d diskPatch) {
		t.Helper()
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendMeta(nil, &d); !bytes.Equal(got, want) {
			t.Errorf("appendMeta =\n%s\njson.Marshal:\n%s", got, want)
		}
	}
	check(diskPatch{})
	check(diskPatch{Files: []diskFile{}, Notes: []string{}, Blobs: []diskBlob{}, Attempts: []diskAttempt{}})
	check(diskPatch{ID: "x", Notes: []string{""}, Files: []diskFile{{}}, Attempts: []diskAttempt{{}}, Blobs: []diskBlob{{}}})
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	check(diskPatch{Description: string(all) + "\u2028\u2029\u00e9\U0001F600\xed\xa0\x80\xf4\x90\x80\x80", ReceivedAt: -1, StartedAt: 1 << 62,
		Files: []diskFile{{Path: "a", OldMode: 1<<32 - 1, Existed: true, Deleted: true}}})
	r := rand.New(rand.NewPCG(13, 21))
	for range 5000 {
		p, blobs := randPatch(r)
		d := toDisk(p, blobs)
		check(d)
	}
}

// BenchmarkEncodeMeta compares appendMeta with json.Marshal on a queued
// patch's record as Submit encodes it.
func BenchmarkEncodeMeta(b *testing.B) {
	d := toDisk(Patch{ID: "ingest-p16-3-12345", Hash: strings.Repeat("ab", 32), Role: "ui_patch", Target: "src/app.py",
		Description: "Rename the handler & fix <b>the</b> title", State: StateQueued, ReceivedAt: time.Now()}, nil)
	b.Run("appendMeta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			appendMeta(make([]byte, 0, 256), &d)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAppendEvent: appendEvent writes the line json.Marshal writes for
// every event, and leaves a time json.Marshal refuses to it.
func TestAppendEvent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	events := []Event{{}, {EventID: 1 << 63, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}}
	for range 3000 {
		e := Event{EventID: r.Uint64N(1 << 40), Event: randText(r), ID: randText(r), Seq: r.Uint64(), State: State(randText(r)),
			Time: time.Unix(0, r.Int64N(1<<62)).In(time.FixedZone("x", r.IntN(86400)-43200))}
		if r.IntN(2) == 0 {
			e.Error, e.Code = randText(r), randText(r)
		}
		if r.IntN(4) == 0 {
			e.Time = e.Time.UTC().Truncate(time.Second)
		}
		events = append(events, e)
	}
	for _, e := range events {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := appendEvent(nil, &e); !ok || !bytes.Equal(got, want) {
			t.Errorf("appendEvent = %s, %v\njson.Marshal:  %s", got, ok, want)
		}
	}
	for _, y := range []int{-1, 10000} {
		e := Event{Time: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)}
		if _, err := json.Marshal(e); err == nil {
			t.Errorf("json.Marshal takes the year %d", y)
		}
		if _, ok := appendEvent(nil, &e); ok {
			t.Errorf("appendEvent took the year %d", y)
		}
	}
}
