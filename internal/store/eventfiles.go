package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// defaultEventBackups is how many rotated event logs are kept when
// Options.EventsBackups is 0: as many as the log keeps.
const defaultEventBackups = 5

// eventFiles are the files of the event log: the current one, which only
// the committer writes, and the rotated ones, named after their last
// event (events-000000001234.jsonl), the newest kept as written and the
// others compressed (events-000000001234.jsonl.gz) in the background. A
// rotated file holds the events after the previous one's last, up to its
// own; the current file those after the newest rotated one's.
type eventFiles struct {
	path      string // the current file
	dir       string
	stem, ext string // "events", ".jsonl"
	keep      int
	log       *slog.Logger

	// mu is held to rename or remove a file, and (read) by a replay while
	// it lists and opens the files it reads, so that a replay never looks
	// for a name that is going away. Neither holds it for more than a
	// few system calls.
	mu sync.RWMutex
	// oldest is the number of the first event the files keep (0: not
	// known). Subscribe refuses to start before it.
	oldest atomic.Uint64

	kick chan struct{} // wakes tidy after a rotation; capacity 1
	stop chan struct{} // closed by close
	done chan struct{} // closed when tidy's goroutine exits
}

func newEventFiles(path string, keep int, log *slog.Logger) *eventFiles {
	if keep <= 0 {
		keep = defaultEventBackups
	}
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	return &eventFiles{
		path: path, dir: filepath.Dir(path), stem: strings.TrimSuffix(base, ext), ext: ext, keep: keep, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// rotatedFile is one rotated event log: its last event, and in which
// forms it exists (both for a moment while it is compressed).
type rotatedFile struct {
	last      uint64
	plain, gz bool
}

// name is the file name of the rotated file ending with event last.
func (fs *eventFiles) name(last uint64, gz bool) string {
	n := fmt.Sprintf("%s-%012d%s", fs.stem, last, fs.ext)
	if gz {
		n += ".gz"
	}
	return n
}

// list returns the rotated files, oldest first, and the names of
// compressions a stop or crash cut short.
func (fs *eventFiles) list() ([]rotatedFile, []string, error) {
	entries, err := os.ReadDir(fs.dir)
	if err != nil {
		return nil, nil, err
	}
	byLast := map[uint64]rotatedFile{}
	var tmps []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), fs.stem+"-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(rest, ".gz.tmp") {
			tmps = append(tmps, e.Name())
			continue
		}
		gz := strings.HasSuffix(rest, ".gz")
		num, ok := strings.CutSuffix(strings.TrimSuffix(rest, ".gz"), fs.ext)
		last, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil {
			continue
		}
		r := byLast[last]
		r.last = last
		if gz {
			r.gz = true
		} else {
			r.plain = true
		}
		byLast[last] = r
	}
	rs := make([]rotatedFile, 0, len(byLast))
	for _, r := range byLast {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b rotatedFile) int {
		switch {
		case a.last < b.last:
			return -1
		case a.last > b.last:
			return 1
		}
		return 0
	})
	return rs, tmps, nil
}

// open opens the files that hold the events after after, oldest first:
// the rotated files from the one holding event after+1 on, and the
// current one.
func (fs *eventFiles) open(after uint64) ([]*os.File, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	rs, _, err := fs.list()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rs {
		if r.last > after {
			names = append(names, filepath.Join(fs.dir, fs.name(r.last, r.gz)))
		}
	}
	names = append(names, fs.path)
	var files []*os.File
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// firstEvent returns the number of the first event in f (compressed if
// its name says so), 0 if it has none in its first maxTailScan bytes.
func firstEvent(f *os.File) uint64 {
	var r io.Reader = io.NewSectionReader(f, 0, maxTailScan)
	if strings.HasSuffix(f.Name(), ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0
		}
		r = zr
	}
	br := bufio.NewReaderSize(io.LimitReader(r, maxTailScan), 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return 0
		}
		if e, ok := parseEventLine(line[:len(line)-1]); ok {
			return e.EventID
		}
	}
}

// start reads what the files keep: the last rotated file's number (0 if
// none) and the first event kept; then it starts tidying in the
// background.
func (fs *eventFiles) start() (newest uint64) {
	if files, err := fs.open(0); err == nil {
		for _, f := range files {
			if fs.oldest.Load() == 0 {
				fs.oldest.Store(firstEvent(f))
			}
			f.Close()
		}
	}
	if rs, _, err := fs.list(); err == nil && len(rs) > 0 {
		newest = rs[len(rs)-1].last
	}
	go fs.run()
	return newest
}

// rotate renames the current file f after its last event and opens a new
// one in its place. It returns the new file, or the error that kept it
// from rotating (f is then still the current file).
func (fs *eventFiles) rotate(f *os.File, last uint64) (*os.File, error) {
	to := filepath.Join(fs.dir, fs.name(last, false))
	for _, n := range []string{to, to + ".gz"} {
		if _, err := os.Lstat(n); err == nil {
			return nil, fmt.Errorf("rotate %s: %s exists (were event numbers given again?)", filepath.Base(fs.path), filepath.Base(n))
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := os.Rename(fs.path, to); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", filepath.Base(fs.path), err)
	}
	nf, err := os.OpenFile(fs.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		if rerr := os.Rename(to, fs.path); rerr != nil {
			return nil, fmt.Errorf("rotate %s: %w (and renaming it back: %w)", filepath.Base(fs.path), err, rerr)
		}
		return nil, fmt.Errorf("rotate %s: %w", filepath.Base(fs.path), err)
	}
	if fs.oldest.Load() == 0 {
		fs.oldest.Store(firstEvent(f))
	}
	select {
	case fs.kick <- struct{}{}:
	default:
	}
	return nf, nil
}

// run tidies the rotated files at the start and after each rotation,
// until close.
func (fs *eventFiles) run() {
	defer close(fs.done)
	for {
		if err := fs.tidy(); err != nil && !errors.Is(err, errStopped) {
			fs.log.Warn("tidy the rotated event logs", "err", err)
		}
		select {
		case <-fs.kick:
		case <-fs.stop:
			return
		}
	}
}

// errStopped ends a compression that close cut short.
var errStopped = errors.New("stopped")

// tidy deletes the rotated files beyond the count, oldest first, and
// compresses every other one but the newest.
func (fs *eventFiles) tidy() error {
	rs, tmps, err := fs.list()
	if err != nil {
		return err
	}
	for _, n := range tmps {
		os.Remove(filepath.Join(fs.dir, n)) // a compression cut short
	}
	for len(rs) > fs.keep {
		r := rs[0]
		fs.mu.Lock()
		fs.oldest.Store(r.last + 1)
		for _, gz := range []bool{false, true} {
			if err := os.Remove(filepath.Join(fs.dir, fs.name(r.last, gz))); err != nil && !errors.Is(err, os.ErrNotExist) {
				fs.log.Warn("delete a rotated event log", "err", err)
			}
		}
		fs.mu.Unlock()
		rs = rs[1:]
	}
	for i, r := range rs {
		if i == len(rs)-1 || !r.plain {
			continue
		}
		if !r.gz {
			if err := fs.compress(r.last); err != nil {
				return err
			}
		}
		fs.mu.Lock()
		err := os.Remove(filepath.Join(fs.dir, fs.name(r.last, false)))
		fs.mu.Unlock()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// compress writes the rotated file ending with event last compressed, as
// a temporary file renamed into place once complete and synced.
func (fs *eventFiles) compress(last uint64) error {
	src, err := os.Open(filepath.Join(fs.dir, fs.name(last, false)))
	if err != nil {
		return err
	}
	defer src.Close()
	gzName := filepath.Join(fs.dir, fs.name(last, true))
	tmp, err := os.OpenFile(gzName+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = func() error {
		zw := gzip.NewWriter(tmp)
		buf := make([]byte, 256<<10)
		for {
			select {
			case <-fs.stop:
				return errStopped
			default:
			}
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := zw.Write(buf[:n]); err != nil {
					return err
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return err
		}
		return tmp.Sync()
	}()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		fs.mu.Lock()
		err = os.Rename(gzName+".tmp", gzName)
		fs.mu.Unlock()
	}
	if err != nil {
		os.Remove(gzName + ".tmp")
		return fmt.Errorf("compress %s: %w", fs.name(last, false), err)
	}
	return nil
}

// close stops the background work, cutting a compression short (the next
// start does it again).
func (fs *eventFiles) close() {
	close(fs.stop)
	<-fs.done
}

// replay sends the events numbered after+1 to to that keep accepts (all
// for nil), read from the files:
// in the first file that holds event after+1 it reads back from the end
// to the line of event after (or an earlier one) when that file is not
// compressed, else forward from its start; then forward through the rest.
func (fs *eventFiles) replay(ctx context.Context, after, to uint64, keep func(*Event) bool, c chan<- Event) error {
	files, err := fs.open(after)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrEventsLost, filepath.Base(fs.path), errors.Unwrap(err))
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	next := after + 1
	for i, f := range files {
		name := filepath.Base(f.Name())
		r, err := eventReader(f, i == 0, after)
		if err != nil {
			return fmt.Errorf("%w: read %s back to event %d: %w", ErrEventsLost, name, after, err)
		}
		for next <= to {
			line, err := r.ReadBytes('\n')
			if err != nil {
				break // the file's end, or a last line a crash cut short
			}
			if n, ok := leadingEventID(line); ok && n < next {
				continue // before the start: not worth decoding
			}
			e, ok := parseEventLine(line[:len(line)-1])
			if !ok || e.EventID < next {
				continue
			}
			if e.EventID != next {
				return fmt.Errorf("%w: event %d is not in %s", ErrEventsLost, next, name)
			}
			if keep != nil && !keep(&e) {
				next++
				continue
			}
			select {
			case c <- e:
			case <-ctx.Done():
				return ctx.Err()
			}
			next++
		}
		if next > to {
			return nil
		}
	}
	return fmt.Errorf("%w: event %d is not in %s", ErrEventsLost, next, filepath.Base(fs.path))
}

// eventReader reads f's lines: a compressed file from its start; a plain
// one, when seek is set, from the line after the last one numbered at
// most after (found by reading back from the end), else from its start.
func eventReader(f *os.File, seek bool, after uint64) (*bufio.Reader, error) {
	if strings.HasSuffix(f.Name(), ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(zr, 64<<10), nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	var start int64
	if seek {
		err = scanBack(f, size, maxReplayScan, func(line []byte, off int64) bool {
			// The number as the event log writes it is read without
			// decoding the line: a replay of the last 1,024 events
			// decoded each twice (~10 ms at ~400 bytes an event).
			if n, ok := leadingEventID(line); ok {
				if n <= after {
					start = off + int64(len(line)) + 1
					return false
				}
				return true
			}
			if e, ok := parseEventLine(line); ok && e.EventID <= after {
				start = off + int64(len(line)) + 1
				return false
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 64<<10), nil
}

// leadingEventID reads the number of an event line as the event log
// writes it, {"event_id":N,…}, without decoding the rest; ok is false for
// any other line.
func leadingEventID(line []byte) (n uint64, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(`{"event_id":`))
	if !found {
		return 0, false
	}
	i := 0
	for ; i < len(rest) && i < 20 && '0' <= rest[i] && rest[i] <= '9'; i++ {
	}
	if i == 0 || i == len(rest) || rest[i] != ',' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	return n, err == nil
}
