package store

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventFile is one file of the event log as a test finds it.
type eventFile struct {
	name string
	last uint64 // the number in a rotated file's name
	gz   bool
}

// eventFiles lists the event log's files in dir: the rotated ones oldest
// first, then events.jsonl.
func eventFilesIn(t *testing.T, dir string) []eventFile {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fs []eventFile
	current := false
	for _, e := range entries {
		name := e.Name()
		if name == "events.jsonl" {
			current = true
			continue
		}
		rest, ok := strings.CutPrefix(name, "events-")
		if !ok || strings.HasSuffix(name, ".tmp") { // a compression under way
			continue
		}
		gz := strings.HasSuffix(rest, ".jsonl.gz")
		num, ok := strings.CutSuffix(strings.TrimSuffix(rest, ".gz"), ".jsonl")
		n, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			t.Fatalf("unexpected file %s next to the event log", name)
		}
		fs = append(fs, eventFile{name, n, gz})
	}
	slices.SortFunc(fs, func(a, b eventFile) int { return int(a.last) - int(b.last) })
	if current {
		fs = append(fs, eventFile{name: "events.jsonl"})
	}
	return fs
}

// readEventFile returns the events of one file of the event log,
// decompressed if need be; lines that are not events are skipped.
func readEventFile(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	var evs []Event
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if e, ok := parseEventLine(line[:len(line)-min(1, len(line))]); ok && len(line) > 0 && line[len(line)-1] == '\n' {
			evs = append(evs, e)
		}
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// readAllEvents reads every file of the event log in dir, oldest first,
// and checks that a rotated file's name is the number of its last event.
func readAllEvents(t *testing.T, dir string) ([]Event, []eventFile) {
	t.Helper()
	files := eventFilesIn(t, dir)
	var all []Event
	for _, f := range files {
		evs := readEventFile(t, filepath.Join(dir, f.name))
		if f.last != 0 && (len(evs) == 0 || evs[len(evs)-1].EventID != f.last) {
			t.Errorf("%s holds %d events, the last not numbered %d", f.name, len(evs), f.last)
		}
		all = append(all, evs...)
	}
	return all, files
}

// waitCompressed polls until at most keep rotated files are left and all
// but the newest are compressed.
func waitCompressed(t *testing.T, dir string, keep int) []eventFile {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		files := eventFilesIn(t, dir)
		rotated := files[:len(files)-1]
		ok := len(rotated) <= keep
		for i, f := range rotated {
			ok = ok && f.gz == (i < len(rotated)-1)
		}
		if ok {
			return files
		}
		if time.Now().After(deadline) {
			t.Fatalf("event log files after 30 s: %+v; want at most %d rotated, all but the newest compressed", files, keep)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEventsRotateUnderLoad: with a small size limit the event log is
// rotated many times while eight writers commit; read back from all its
// files, it holds every event once, in order, and each rotated file is
// named after its last event; all but the newest are compressed.
func TestEventsRotateUnderLoad(t *testing.T) {
	dir := t.TempDir()
	opts := Options{EventsPath: filepath.Join(dir, "events.jsonl"), EventsMaxBytes: 4 << 10, EventsBackups: 1000, NoSync: true}
	s := openTest(t, filepath.Join(dir, "queue"), opts)
	sub, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 8, 60
	const total = writers * perWriter * 2
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, _, err := s.Submit(t.Context(), Patch{ID: id}, []byte(id)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Update(t.Context(), id, func(p *Patch) error { p.State = StateApplying; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	live := collect(t, sub, total)
	wg.Wait()
	checkNumbers(t, live, 0)
	files := waitCompressed(t, dir, 1000)
	if len(files) < 10 {
		t.Errorf("%d files after %d events through a 4 KiB limit, want many", len(files), total)
	}
	s.Close()
	all, _ := readAllEvents(t, dir)
	checkNumbers(t, all, 0)
	if len(all) != total {
		t.Errorf("the event log's files hold %d events, want %d", len(all), total)
	}
}

// TestSubscribeFromRotatedFiles: after a restart (nothing in memory),
// Subscribe replays from compressed and plain rotated files and the
// current one, from any event kept, then goes on live.
func TestSubscribeFromRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	opts := Options{EventsPath: filepath.Join(dir, "events.jsonl"), EventsMaxBytes: 1 << 10, EventsBackups: 1000, NoSync: true}
	s := openTest(t, qdir, opts)
	n := uint64(200)
	for i := range n {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	files := waitCompressed(t, dir, 1000)
	s.Close()
	if len(files) < 5 {
		t.Fatalf("%d files, want several", len(files))
	}
	s = openTest(t, qdir, opts)
	if got := s.LastEventID(); got != n {
		t.Fatalf("LastEventID() after reopening = %d, want %d", got, n)
	}
	// 0: from the oldest, compressed; the newest rotated file's last
	// event and the one before; the current file's.
	newest := files[len(files)-2].last
	for _, after := range []uint64{0, 1, 57, newest - 1, newest, n - 1} {
		sub, err := s.Subscribe(t.Context(), after)
		if err != nil {
			t.Fatalf("Subscribe(%d) = %v", after, err)
		}
		checkNumbers(t, collect(t, sub, int(n-after)), after)
		mustSubmit(t, s, fmt.Sprint("live", after), "x")
		if e := collect(t, sub, 1)[0]; e.ID != fmt.Sprint("live", after) {
			t.Errorf("Subscribe(%d): live event %+v", after, e)
		}
		n++
	}
}

// TestSubscribeRotatedAway: rotated files beyond the count are deleted;
// Subscribe from an event they held is refused with ErrEventsLost at once,
// naming the oldest event kept, from which it works.
func TestSubscribeRotatedAway(t *testing.T) {
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	opts := Options{EventsPath: filepath.Join(dir, "events.jsonl"), EventsMaxBytes: 1 << 10, EventsBackups: 2, NoSync: true}
	s := openTest(t, qdir, opts)
	const n = 200
	for i := range n {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	files := waitCompressed(t, dir, 2)
	if len(files) != 3 {
		t.Fatalf("files %+v, want 2 rotated and the current one", files)
	}
	all, _ := readAllEvents(t, dir)
	oldest := all[0].EventID
	checkNumbers(t, all, oldest-1)
	// Still in memory: the latest 1024 events are kept there.
	sub, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatalf("Subscribe(0) before a restart = %v", err)
	}
	checkNumbers(t, collect(t, sub, n), 0)
	s.Close()
	s = openTest(t, qdir, opts)
	_, err = s.Subscribe(t.Context(), 0)
	if !errors.Is(err, ErrEventsLost) || !strings.Contains(err.Error(), fmt.Sprint("the oldest kept is ", oldest)) {
		t.Errorf("Subscribe(0) = %v, want ErrEventsLost naming event %d", err, oldest)
	}
	sub, err = s.Subscribe(t.Context(), oldest-1)
	if err != nil {
		t.Fatalf("Subscribe(%d) = %v", oldest-1, err)
	}
	checkNumbers(t, collect(t, sub, int(n-oldest+1)), oldest-1)
}

// TestEventNumbersAfterRotation: a rotation can leave events.jsonl empty
// (here every batch rotates it); numbering goes on after a restart from
// the newest rotated file, also when events.jsonl holds only a torn line
// or is missing.
func TestEventNumbersAfterRotation(t *testing.T) {
	dir := t.TempDir()
	qdir, path := filepath.Join(dir, "queue"), filepath.Join(dir, "events.jsonl")
	opts := Options{EventsPath: path, EventsMaxBytes: 1, EventsBackups: 100, NoSync: true}
	s := openTest(t, qdir, opts)
	for i := range 3 {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("events.jsonl after rotating each batch: %v, %v; want empty", fi, err)
	}
	next := uint64(4)
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"empty", func() {}},
		{"a torn line", func() { os.WriteFile(path, []byte(`{"event_id":99,"ti`), 0o600) }},
		{"missing", func() { os.Remove(path) }},
	} {
		tc.setup()
		s = openTest(t, qdir, opts)
		if got := s.LastEventID(); got != next-1 {
			t.Errorf("%s events.jsonl: LastEventID() = %d, want %d", tc.name, got, next-1)
		}
		mustSubmit(t, s, tc.name, "x")
		sub, err := s.Subscribe(t.Context(), 0)
		if err != nil {
			t.Fatalf("%s: Subscribe(0) = %v", tc.name, err)
		}
		evs := collect(t, sub, int(next))
		checkNumbers(t, evs, 0)
		if evs[next-1].ID != tc.name {
			t.Errorf("%s: event %d = %+v", tc.name, next, evs[next-1])
		}
		s.Close()
		next++
	}
	all, _ := readAllEvents(t, dir)
	checkNumbers(t, all, 0)
}

// TestEventsTornLineRotated: a line a crash cut short at the end of
// events.jsonl goes into a rotated file with it; the next line starts on
// a line of its own, and replays read past it.
func TestEventsTornLineRotated(t *testing.T) {
	dir := t.TempDir()
	qdir, path := filepath.Join(dir, "queue"), filepath.Join(dir, "events.jsonl")
	opts := Options{EventsPath: path, EventsMaxBytes: 600, NoSync: true}
	s := openTest(t, qdir, opts)
	mustSubmit(t, s, "a", "x")
	mustSubmit(t, s, "b", "x")
	s.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"event_id":3,"time":"2026-`)
	f.Close()
	s = openTest(t, qdir, opts)
	for i := range 10 {
		mustSubmit(t, s, fmt.Sprint("p", i), "x")
	}
	if len(eventFilesIn(t, dir)) < 3 {
		t.Fatalf("files %+v, want rotations", eventFilesIn(t, dir))
	}
	sub, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	evs := collect(t, sub, 12)
	checkNumbers(t, evs, 0)
	all, _ := readAllEvents(t, dir)
	checkNumbers(t, all, 0)
}

// TestLeadingEventID: the number of a line the event log wrote is read
// without decoding it; any other line is left to the decoder.
func TestLeadingEventID(t *testing.T) {
	for line, want := range map[string]uint64{
		`{"event_id":12,"time":"2026-01-01T00:00:00Z"}`: 12,
		`{"event_id":0,"x":1}`:                          0,
		`{"event_id":18446744073709551615,"x":1}`:       18446744073709551615,
	} {
		if n, ok := leadingEventID([]byte(line)); !ok || n != want {
			t.Errorf("leadingEventID(%s) = %d, %v; want %d", line, n, ok, want)
		}
	}
	for _, line := range []string{``, `{"event_id":`, `{"event_id":12`, `{"event_id":-1,`, `{"event_id":1e3,`, `{"event_id":18446744073709551616,`, `{ "event_id":1,`, `{"time":"x","event_id":1,`, `{"event_id":"1",`} {
		if n, ok := leadingEventID([]byte(line)); ok {
			t.Errorf("leadingEventID(%s) = %d, true; want not read", line, n)
		}
	}
}
