package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The journal is a series of segment files, dir/seg/00000001.jnl and on;
// the highest-numbered one is the active one, the only one written to.
// Each has the journal's file header and its records (doc.go).

// segDirName is the segments' directory inside the store's directory.
const segDirName = "seg"

// DefaultSegmentBytes is the size after which the committer starts a new
// segment.
const DefaultSegmentBytes = 64 << 20

// ref is where bytes are in the journal: a segment and an offset in it.
type ref struct {
	seg uint32
	off int64
}

// segName is the file name of segment n.
func segName(n uint32) string { return fmt.Sprintf("%08d.jnl", n) }

// parseSegName returns the number of a segment file name.
func parseSegName(name string) (uint32, bool) {
	num, ok := strings.CutSuffix(name, ".jnl")
	if !ok || len(num) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint32(n), true
}

// segLabel names segment n in messages: "queue/seg/00000001.jnl".
func (s *Store) segLabel(n uint32) string {
	return filepath.Join(filepath.Base(s.dir), segDirName, segName(n))
}

// segPath is the path of segment n.
func (s *Store) segPath(n uint32) string { return filepath.Join(s.dir, segDirName, segName(n)) }

// listSegments returns the numbers of the segment files, ascending.
func listSegments(segDir string) ([]uint32, error) {
	ents, err := os.ReadDir(segDir)
	if err != nil {
		return nil, err
	}
	var segs []uint32
	for _, e := range ents {
		if n, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// migrateLegacy moves the journal of a patchd from before segments,
// dir/journal, to seg/00000001.jnl (rename, then the directories synced),
// and creates the segments' directory. A crash between leaves either the
// old layout or the new one; a seg directory without segments and a
// journal beside it is the old layout.
func (s *Store) migrateLegacy() error {
	segDir := filepath.Join(s.dir, segDirName)
	legacy := filepath.Join(s.dir, "journal")
	label := filepath.Join(filepath.Base(s.dir), "journal")
	if _, err := os.Stat(segDir); err != nil {
		if err := os.Mkdir(segDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return ioFailure("create", s.segLabel(1), err)
		}
		if err := syncDir(s.dir); err != nil {
			return ioFailure("sync", filepath.Base(s.dir), err)
		}
	}
	if _, err := os.Stat(legacy); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return ioFailure("stat", label, err)
	}
	segs, err := listSegments(segDir)
	if err != nil {
		return ioFailure("read", filepath.Join(filepath.Base(s.dir), segDirName), err)
	}
	if len(segs) > 0 {
		return fmt.Errorf("open %s: both %s and segments in %s exist; move one of them aside",
			label, label, filepath.Join(filepath.Base(s.dir), segDirName))
	}
	if err := os.Rename(legacy, s.segPath(1)); err != nil {
		return ioFailure("rename", label, err)
	}
	if err := syncDir(segDir); err != nil {
		return ioFailure("sync", filepath.Join(filepath.Base(s.dir), segDirName), err)
	}
	if err := syncDir(s.dir); err != nil {
		return ioFailure("sync", filepath.Base(s.dir), err)
	}
	s.log.Info("journal moved to segments", "from", label, "to", s.segLabel(1))
	return nil
}

// segReaders keeps a few segment files open for reading bodies, blobs,
// diffs and metas (at most maxOpenSegs), not one descriptor per segment.
type segReaders struct {
	s      *Store
	mu     sync.RWMutex
	files  map[uint32]*os.File
	order  []uint32 // least recently opened first
	closed bool
}

// maxOpenSegs bounds the segment files kept open for reading.
const maxOpenSegs = 8

// readAt reads len(b) bytes of segment seg at off.
func (r *segReaders) readAt(seg uint32, b []byte, off int64) error {
	r.mu.RLock()
	f := r.files[seg]
	if f != nil {
		_, err := f.ReadAt(b, off)
		r.mu.RUnlock()
		return err
	}
	closed := r.closed
	r.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if f = r.files[seg]; f == nil {
		var err error
		if f, err = os.Open(r.s.segPath(seg)); err != nil {
			r.mu.Unlock()
			return err
		}
		if len(r.order) >= maxOpenSegs {
			old := r.order[0]
			r.order = r.order[1:]
			r.files[old].Close()
			delete(r.files, old)
		}
		r.files[seg] = f
		r.order = append(r.order, seg)
	}
	r.mu.Unlock()
	// Read under the read lock, so that no eviction closes f meanwhile.
	return r.readAt(seg, b, off)
}

// forget closes segment seg if it is open (it is being removed).
func (r *segReaders) forget(seg uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.files[seg]; f != nil {
		f.Close()
		delete(r.files, seg)
		r.order = slices.DeleteFunc(r.order, func(n uint32) bool { return n == seg })
	}
}

func (r *segReaders) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.files {
		f.Close()
	}
	r.files, r.order, r.closed = nil, nil, true
}

// read reads n bytes at a ref, naming what it reads in errors.
func (s *Store) read(at ref, n int64, what string) ([]byte, error) {
	b := make([]byte, n)
	if err := s.readers.readAt(at.seg, b, at.off); err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", what, ioFailure("read", s.segLabel(at.seg), err))
	}
	return b, nil
}

// rollSegment starts a new active segment after the current one grew
// past Options.SegmentBytes: the new file is created with its header and
// made durable (file and directory) before any record goes into it, then
// the old one loses the zeros written ahead of its records. A failure
// leaves the current segment active; the next batch tries again.
func (s *Store) rollSegment(why string) error {
	next := s.seg + 1
	f, err := createSegment(s.segPath(next), s.segLabel(next), !s.opts.NoSync)
	if err != nil {
		return err
	}
	old := s.jf
	// The old segment keeps only its records. A failure here leaves zeros
	// after them, which a scan reads as the end of the segment.
	if err := old.Truncate(s.tail); err == nil && !s.opts.NoSync {
		old.Sync()
	}
	var jf journalFile = osJournal{f}
	if s.opts.wrapJournal != nil {
		jf = s.opts.wrapJournal(jf)
	}
	s.fileMu.Lock()
	s.jf = jf
	s.fileMu.Unlock()
	old.Close()
	s.log.Info("journal segment started", "segment", s.segLabel(next), "after", s.segLabel(s.seg), "why", why)
	s.mu.Lock()
	s.oldBytes += s.tail
	s.size = int64(len(fileHeader))
	s.mu.Unlock()
	s.seg, s.name = next, s.segLabel(next)
	s.tail, s.alloc, s.dirty = int64(len(fileHeader)), int64(len(fileHeader)), false
	return nil
}

// createSegment creates a segment file holding only the header, durably
// (the file and its directory entry) if sync.
func createSegment(path, label string, sync bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, ioFailure("create", label, err)
	}
	_, err = f.WriteAt([]byte(fileHeader), 0)
	if err == nil && sync {
		err = f.Sync()
	}
	if err == nil && sync {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, ioFailure("create", label, err)
	}
	return f, nil
}
