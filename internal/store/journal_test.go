package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scanFile scans a journal file, calling fn for every good record.
func scanFile(t *testing.T, path string, fn func(r record, off int64) error) scanResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	res, err := scanJournal(f, int64(len(fileHeader)), fi.Size(), "journal", slog.New(slog.DiscardHandler), fn)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// recordOffsets returns the offset of every good record in a journal file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	var offs []int64
	scanFile(t, path, func(r record, off int64) error {
		offs = append(offs, off)
		return nil
	})
	return offs
}

// recordsEnd is where the last good record of a journal file ends (the
// zeros the store writes ahead follow it).
func recordsEnd(t *testing.T, path string) int64 {
	t.Helper()
	return scanFile(t, path, func(record, int64) error { return nil }).end
}

func ids(ps []Patch) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestTornTail(t *testing.T) {
	otherRec, _ := encodeRecord(kindPut, 9, []byte(`{"id":"ghost","h":"x","s":"queued"}`), []byte("ghost body"))
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, offs []int64)
		want   []string // patches left, newest first
	}{
		{
			name: "garbage appended",
			damage: func(t *testing.T, path string, _ []int64) {
				appendFile(t, path, []byte("\x01garbage\xff\xfe not a record at all"))
			},
			want: []string{"p3", "p2", "p1"},
		},
		{
			name:   "zeros appended",
			damage: func(t *testing.T, path string, _ []int64) { appendFile(t, path, make([]byte, 4096)) },
			want:   []string{"p3", "p2", "p1"},
		},
		{
			name:   "half a record appended",
			damage: func(t *testing.T, path string, _ []int64) { appendFile(t, path, otherRec[:len(otherRec)/2]) },
			want:   []string{"p3", "p2", "p1"},
		},
		{
			name:   "header only appended",
			damage: func(t *testing.T, path string, _ []int64) { appendFile(t, path, otherRec[:recHeaderLen]) },
			want:   []string{"p3", "p2", "p1"},
		},
		{
			name: "last record cut short",
			damage: func(t *testing.T, path string, offs []int64) {
				last := offs[len(offs)-1]
				os.Truncate(path, last+(recordsEnd(t, path)-last)/2)
			},
			want: []string{"p2", "p1"},
		},
		{
			name: "byte flipped in last payload",
			damage: func(t *testing.T, path string, offs []int64) {
				flipByte(t, path, recordsEnd(t, path)-1)
			},
			want: []string{"p2", "p1"},
		},
		{
			name: "byte flipped in last meta",
			damage: func(t *testing.T, path string, offs []int64) {
				flipByte(t, path, offs[len(offs)-1]+recHeaderLen+payloadFixed+3)
			},
			want: []string{"p2", "p1"},
		},
		{
			name: "length of last record damaged",
			damage: func(t *testing.T, path string, offs []int64) {
				flipByte(t, path, offs[len(offs)-1]+4)
			},
			want: []string{"p2", "p1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				mustSubmit(t, s, fmt.Sprintf("p%d", i), strings.Repeat("body", i))
			}
			s.Close()
			path := activeSegment(t, dir)
			tt.damage(t, path, recordOffsets(t, path))

			s = openTest(t, dir, Options{})
			got, _ := s.List("", 10, "")
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Fatalf("after damage List = %v, want %v", ids(got), tt.want)
			}
			for _, p := range got {
				body, err := s.Body(p.ID)
				if want := strings.Repeat("body", int(p.Seq)); err != nil || string(body) != want {
					t.Errorf("Body(%s) = %q, %v; want %q", p.ID, body, err, want)
				}
			}
			mustSubmit(t, s, "new", "new body")
			if _, created, err := s.Submit(context.Background(), Patch{ID: "p3"}, []byte("bodybodybody")); err != nil {
				t.Errorf("Submit(p3) again = created %v, %v", created, err)
			}
			s.Close()

			s = openTest(t, dir, Options{})
			got, _ = s.List("", 10, "")
			want := append([]string{"new"}, tt.want...)
			if len(tt.want) == 2 {
				want = append([]string{"p3"}, want...)
			}
			if !reflect.DeepEqual(ids(got), want) {
				t.Errorf("after second reopen List = %v, want %v", ids(got), want)
			}
			if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
				t.Errorf("journal.compact left behind: %v", err)
			}
		})
	}
}

func TestMidFileDamage(t *testing.T) {
	// replayed: the damage is in records Open replays (no checkpoint has
	// them); checkpointed: index.db has them, and the damage is found when
	// the record is read back.
	for _, replayed := range []bool{true, false} {
		t.Run(map[bool]string{true: "replayed", false: "checkpointed"}[replayed], func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 5; i++ {
				mustSubmit(t, s, fmt.Sprintf("p%d", i), strings.Repeat("x", 100*i))
			}
			mustUpdate(t, s, "p4", setState(StateFailed))
			s.Close()
			if replayed {
				os.Remove(filepath.Join(dir, "index.db"))
			}
			path := activeSegment(t, dir)
			offs := recordOffsets(t, path)
			flipByte(t, path, offs[1]+recHeaderLen+payloadFixed+50) // inside p2's record

			s = openTest(t, dir, Options{})
			got, _ := s.List("", 10, "")
			if want := []string{"p5", "p4", "p3", "p1"}; !reflect.DeepEqual(ids(got), want) {
				t.Fatalf("List = %v, want %v", ids(got), want)
			}
			if p, _ := s.Get("p4"); p.State != StateFailed {
				t.Errorf("p4 state = %q, want failed (its update follows the damage)", p.State)
			}
			if _, ok := s.Get("p2"); ok {
				t.Errorf("Get(p2) found a patch whose record is damaged")
			}
			for _, p := range got {
				if body, err := s.Body(p.ID); err != nil || len(body) != 100*int(p.Seq) {
					t.Errorf("Body(%s) = %d bytes, %v; want %d", p.ID, len(body), err, 100*p.Seq)
				}
			}
			mustSubmit(t, s, "p6", "six")
			s.Close()
			// The damaged segment stays as it was (records are found by
			// their offsets); when Open replayed it, new records went to a
			// new segment.
			want := map[bool]string{true: "00000002.jnl", false: "00000001.jnl"}[replayed]
			if got := activeSegment(t, dir); filepath.Base(got) != want {
				t.Errorf("active segment after damage = %s, want %s", got, want)
			}
			if n := len(recordOffsets(t, filepath.Join(dir, "seg", "00000001.jnl"))); n < 5 {
				t.Errorf("damaged segment holds %d good records, want at least 5 (kept as it was)", n)
			}

			// Nothing lost at the next Open, and no new segment for the old damage.
			s = openTest(t, dir, Options{})
			got, _ = s.List("", 10, "")
			if want := []string{"p6", "p5", "p4", "p3", "p1"}; !reflect.DeepEqual(ids(got), want) {
				t.Errorf("after second reopen List = %v, want %v", ids(got), want)
			}
			s.Close()
			if got := activeSegment(t, dir); filepath.Base(got) != want {
				t.Errorf("active segment after a second reopen = %s, want %s", got, want)
			}
		})
	}
}

// activeSegment returns the path of the highest-numbered journal segment.
func activeSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(filepath.Join(dir, "seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %v, %v", dir, segs, err)
	}
	return filepath.Join(dir, "seg", segName(segs[len(segs)-1]))
}

// TestSegments: the committer starts a new segment once the active one is
// past SegmentBytes, cutting the zeros written ahead off the old one;
// patches whose records are spread over segments read back whole, before
// and after a reopen; a segment missing in the middle fails Open, naming it.
func TestSegments(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{NoSync: true, SegmentBytes: 4096})
	for i := range 40 {
		id := fmt.Sprintf("c%d", i)
		mustSubmit(t, s, id, strings.Repeat(id, 50))
		if i%2 == 0 {
			mustUpdate(t, s, id, setState(StateApplying))
			mustUpdate(t, s, id, func(p *Patch) { p.State, p.Diff = StateApplied, "diff of "+id })
		}
	}
	want, _ := s.List("", 100, "")
	s.Close()
	segs, _ := listSegments(filepath.Join(dir, "seg"))
	if len(segs) < 4 {
		t.Fatalf("segments = %v, want several of about 4 KiB", segs)
	}
	for _, n := range segs[:len(segs)-1] {
		path := filepath.Join(dir, "seg", segName(n))
		fi, _ := os.Stat(path)
		if end := recordsEnd(t, path); fi.Size() != end || fi.Size() > 4096+1024 {
			t.Errorf("%s: %d bytes, records end at %d; want no zeros after a full segment", segName(n), fi.Size(), end)
		}
	}
	s = openTest(t, dir, Options{SegmentBytes: 4096})
	got, _ := s.List("", 100, "")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen List =\n%+v\nwant\n%+v", got, want)
	}
	for _, p := range got {
		if body, err := s.Body(p.ID); err != nil || string(body) != strings.Repeat(p.ID, 50) {
			t.Errorf("Body(%s) = %q, %v", p.ID, body, err)
		}
	}
	if p := mustSubmit(t, s, "next", "x"); p.Seq != 41 {
		t.Errorf("Seq after reopen = %d, want 41", p.Seq)
	}
	s.Close()

	os.Remove(filepath.Join(dir, "seg", segName(segs[1])))
	_, err := Open(dir, Options{Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), segName(segs[1])) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open with %s removed = %v; want an error naming it missing", segName(segs[1]), err)
	}
}

func TestJournalHeader(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{name: "empty", content: ""},
		{name: "header cut short", content: fileHeader[:3]},
		{name: "header only", content: fileHeader},
		{name: "foreign file", content: "hello, world", wantErr: true},
		{name: "foreign short file", content: "hey", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "journal"), []byte(tt.content), 0o600)
			s, err := Open(dir, Options{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open with journal %q = %v, want error %v", tt.content, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer s.Close()
			mustSubmit(t, s, "a", "b")
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	p := Patch{ID: "id", Seq: 7, Hash: "h", Role: "r", State: StateApplied, Files: []FileChange{{Path: "x", Existed: true}}}
	meta, err := encodeMeta(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, bodyAt := encodeRecord(kindPut, 0, meta, []byte("BODY"))
	sealRecord(rec, 7)
	n, err := parseHeader(rec[:recHeaderLen], int64(len(rec)))
	if err != nil || n != int64(len(rec)-recHeaderLen) {
		t.Fatalf("parseHeader = %d, %v; want %d", n, err, len(rec)-recHeaderLen)
	}
	r, err := parsePayload(rec[:recHeaderLen], rec[recHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if r.kind != kindPut || r.seq != 7 || r.bodyAt != int64(bodyAt) || string(rec[r.bodyAt:]) != "BODY" {
		t.Errorf("parsed %+v, want put, seq 7, body at %d", r, bodyAt)
	}
	got, _, _, err := decodeMeta(r.meta, r.seq)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("decodeMeta = %+v, %v; want %+v", got, err, p)
	}
}

// FuzzScanJournal checks that no input crashes the scanner and that it
// only ever yields records that verify.
func FuzzScanJournal(f *testing.F) {
	rec, _ := encodeRecord(kindPut, 1, []byte(`{"id":"a","h":"x","s":"queued"}`), []byte("body"))
	f.Add(rec)
	f.Add(append(append([]byte{}, rec...), rec[:7]...))
	f.Add(append([]byte("junk"), rec...))
	f.Fuzz(func(t *testing.T, data []byte) {
		file := append([]byte(fileHeader), data...)
		r := bytes.NewReader(file)
		_, err := scanJournal(r, int64(len(fileHeader)), int64(len(file)), "fuzz", slog.New(slog.DiscardHandler), func(rec record, off int64) error {
			if off+rec.size > int64(len(file)) {
				t.Fatalf("record at %d of size %d beyond file of %d", off, rec.size, len(file))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scanJournal = %v", err)
		}
	})
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
