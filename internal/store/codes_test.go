package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCodes: each refusal of the store has its code, and errors.Is still
// tells its sentinel.
func TestCodes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	ctx := context.Background()
	mustSubmit(t, s, "A", "a")
	mustSubmit(t, s, "B", "b")
	mustUpdate(t, s, "B", setState(StateApplying))
	closed := openTest(t, t.TempDir(), Options{NoSync: true})
	closed.Close()
	tests := []struct {
		name     string
		do       func() error
		sentinel error
		code     string
	}{
		{"same id, other body", func() error { _, _, err := s.Submit(ctx, Patch{ID: "A"}, []byte("other")); return err }, ErrConflict, CodeIDConflict},
		{"update of no patch", func() error { _, err := s.Update(ctx, "none", func(*Patch) error { return nil }); return err }, ErrNotFound, CodeNotFound},
		{"body of no patch", func() error { _, err := s.Body("none"); return err }, ErrNotFound, CodeNotFound},
		{"drop of no patch", func() error { _, err := s.Drop(ctx, "none"); return err }, ErrNotFound, CodeNotFound},
		{"drop of an applying patch", func() error { _, err := s.Drop(ctx, "B"); return err }, ErrNotQueued, CodeNotQueued},
		{"submit to a closed store", func() error { _, _, err := closed.Submit(ctx, Patch{ID: "C"}, []byte("c")); return err }, ErrClosed, CodeClosed},
		{"events after the last", func() error { _, err := s.Subscribe(ctx, 1000); return err }, ErrEventsLost, CodeEventsLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var c interface{ Code() string }
			switch {
			case !errors.Is(err, tt.sentinel):
				t.Errorf("error = %v, want %v", err, tt.sentinel)
			case !errors.As(err, &c) || c.Code() != tt.code:
				t.Errorf("error %q: code %v, want %s", err, c, tt.code)
			}
		})
	}
	for _, e := range []struct {
		err  error
		code string
	}{{ErrUnavailable, CodeUnavailable}, {ErrSlowSubscriber, CodeSlowSubscriber}} {
		var c interface{ Code() string }
		if !errors.As(ioFailure("write", "journal", e.err), &c) || c.Code() != e.code {
			t.Errorf("%v wrapped: code %v, want %s", e.err, c, e.code)
		}
	}
}

// TestCodeKept: a failed patch's code is journaled with its error, read
// back after a restart, and carried by its event; a dropped patch's is
// dropped.
func TestCodeKept(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	s := openTest(t, filepath.Join(dir, "q"), Options{EventsPath: events})
	mustSubmit(t, s, "A", "a")
	mustSubmit(t, s, "B", "b")
	mustUpdate(t, s, "A", func(p *Patch) {
		p.State, p.Error, p.Code = StateFailed, "search text not found in a.txt", "match_not_found"
	})
	if _, err := s.Drop(context.Background(), "B"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, filepath.Join(dir, "q"), Options{EventsPath: events})
	for id, want := range map[string]string{"A": "match_not_found", "B": CodeDropped} {
		if p, _ := s.Get(id); p.Code != want {
			t.Errorf("after a restart, %s's code = %q, want %q", id, p.Code, want)
		}
	}
	data, _ := os.ReadFile(events)
	if !strings.Contains(string(data), `"state":"failed","error":"search text not found in a.txt","code":"match_not_found"}`) {
		t.Errorf("events = %s, want A's failure with its code", data)
	}
}

// TestCodeOldRecords: records written before codes were kept (no "c"
// member) read back with no code, by the fast decoder and by Unmarshal.
func TestCodeOldRecords(t *testing.T) {
	old := `{"id":"A","h":"ab","s":"failed","e":"pattern not found in a.txt","fa":1700000000000000000}`
	p, _, _, err := decodeMeta([]byte(old), 3)
	if err != nil || p.ID != "A" || p.State != StateFailed || p.Error != "pattern not found in a.txt" || p.Code != "" {
		t.Errorf("decodeMeta(%s) = %+v, %v; want A failed with its error and no code", old, p, err)
	}
	// Unmarshal decides what the fast decoder gives up on (an unknown
	// member): the same patch.
	p, _, _, err = decodeMeta([]byte(strings.Replace(old, `"id"`, `"x":1,"id"`, 1)), 3)
	if err != nil || p.ID != "A" || p.Code != "" {
		t.Errorf("decodeMeta with an unknown member = %+v, %v", p, err)
	}
	withCode := strings.Replace(old, `"e":`, `"c":"match_not_found","e":`, 1)
	if p, _, _, err := decodeMeta([]byte(withCode), 3); err != nil || p.Code != "match_not_found" {
		t.Errorf("decodeMeta(%s) = %+v, %v; want its code", withCode, p, err)
	}
	if d, _, ok := decodeMetaFast([]byte(withCode)); !ok || d.Code != "match_not_found" {
		t.Errorf("decodeMetaFast(%s) = %+v, %v; want its code", withCode, d, ok)
	}
}
