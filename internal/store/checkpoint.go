package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultCheckpointInterval is how often the checkpointer writes what
// changed to index.db.
const DefaultCheckpointInterval = time.Second

// ckMaxDirty is how many changed patches make the checkpointer write at
// once rather than at its next tick; replay at Open writes a checkpoint
// at this many too, so that rebuilding a long history keeps memory
// bounded.
const ckMaxDirty = 20000

const indexName = "index.db"

// openIndex opens index.db and checks it against the segments there are.
// It returns the checkpoint's record, or ok=false after moving an index.db
// that cannot be trusted aside (index.db.bad) and creating an empty one,
// which the caller rebuilds from the segments. A checkpoint that refers to
// a segment that is not there is an error: patches would be lost.
func (s *Store) openIndex(segs []uint32, sizes map[uint32]int64) (m ckMeta, ok bool, err error) {
	path := filepath.Join(s.dir, indexName)
	label := filepath.Join(filepath.Base(s.dir), indexName)
	if _, err := os.Stat(path); err == nil {
		db, m, why, err := s.tryIndex(path, segs, sizes)
		if err != nil {
			return m, false, err
		}
		if why == "" {
			s.db = db
			return m, true, nil
		}
		s.log.Warn("index checkpoint not usable; moving it aside to "+indexName+".bad and rebuilding the index from every journal segment (work in proportion to the history, this once)",
			"index", label, "why", why)
		if err := os.Rename(path, path+".bad"); err != nil {
			return m, false, ioFailure("rename", label, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return m, false, ioFailure("stat", label, err)
	} else if sizes[segs[len(segs)-1]] > int64(len(fileHeader)) || len(segs) > 1 {
		s.log.Info("no index checkpoint; building the index from every journal segment (work in proportion to the history, this once)",
			"index", label)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: s.opts.NoSync})
	if err != nil {
		return m, false, ioFailure("create", label, err)
	}
	if err := syncDir(s.dir); err != nil {
		db.Close()
		return m, false, ioFailure("sync", filepath.Base(s.dir), err)
	}
	s.db = db
	return ckMeta{wm: ref{segs[0], int64(len(fileHeader))}, nextSeq: 1, firstSeg: segs[0]}, false, nil
}

// tryIndex opens index.db and checks it; why says why it cannot be
// trusted (then it is closed). A fault reading a damaged file (bbolt
// panics, or the mapping faults past a cut file's end) is such a why.
func (s *Store) tryIndex(path string, segs []uint32, sizes map[uint32]int64) (db *bolt.DB, m ckMeta, why string, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			why = fmt.Sprintf("reading it failed: %v", r)
			if db != nil {
				db.Close()
				db = nil
			}
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, m, "", ioFailure("stat", indexName, err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: s.opts.NoSync})
	if err != nil {
		return nil, m, fmt.Sprintf("it does not open: %v", err), nil
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			why = fmt.Sprintf("it is cut short (%d bytes, its pages end at %d)", fi.Size(), tx.Size())
			return nil
		}
		m, why = readCkMeta(tx)
		return nil
	})
	if err == nil && why == "" {
		why, err = s.checkWatermark(m, segs, sizes)
	}
	if err != nil || why != "" {
		db.Close()
		return nil, m, why, err
	}
	return db, m, "", nil
}

// checkWatermark checks that the segments are the journal index.db was
// made from: the watermark's segment is there and long enough, and it has
// the last record the checkpoint took in at its place, with its CRC. A
// segment the checkpoint needs and that is not there is an error.
func (s *Store) checkWatermark(m ckMeta, segs []uint32, sizes map[uint32]int64) (why string, err error) {
	first, last := segs[0], segs[len(segs)-1]
	if m.firstSeg != 0 && m.firstSeg < first {
		return "", fmt.Errorf("open %s: journal segment %s is missing: the index refers to patches stored in it; restore it from a backup",
			filepath.Base(s.dir), s.segLabel(m.firstSeg))
	}
	if m.wm.seg > last {
		return "", fmt.Errorf("open %s: journal segment %s is missing: the index took in records from it, which would be lost; restore it from a backup",
			filepath.Base(s.dir), s.segLabel(m.wm.seg))
	}
	if m.wm.seg < first {
		return fmt.Sprintf("its watermark is in segment %s, before the first there is", segName(m.wm.seg)), nil
	}
	if sizes[m.wm.seg] < m.wm.off {
		return fmt.Sprintf("segment %s is %d bytes, shorter than its watermark %d", segName(m.wm.seg), sizes[m.wm.seg], m.wm.off), nil
	}
	if m.last.seg == 0 {
		if m.wm.off != int64(len(fileHeader)) || m.wm.seg != first {
			return "its watermark has no last record", nil
		}
		return "", nil
	}
	// The whole last record is read and checked: one record, whatever
	// the history's length.
	wrong := fmt.Sprintf("segment %s does not have its last record whole at offset %d (damaged, another journal, or an older copy)",
		segName(m.last.seg), m.last.off)
	var hdr [recHeaderLen]byte
	if err := s.readers.readAt(m.last.seg, hdr[:], m.last.off); err != nil {
		return wrong, nil
	}
	n, err := parseHeader(hdr[:], sizes[m.last.seg]-m.last.off)
	if err != nil || binary.LittleEndian.Uint32(hdr[8:]) != m.crc || m.last.off+recHeaderLen+n != m.wm.off && m.last.seg == m.wm.seg {
		return wrong, nil
	}
	payload := make([]byte, n)
	if err := s.readers.readAt(m.last.seg, payload, m.last.off+recHeaderLen); err != nil {
		return wrong, nil
	}
	if _, err := parsePayload(hdr[:], payload); err != nil {
		return wrong, nil
	}
	return "", nil
}

// ckMetaLocked is the checkpoint's record for the index as it is now.
func (s *Store) ckMetaLocked() ckMeta {
	m := ckMeta{wm: s.wm, last: s.wmLast, crc: s.wmCRC, nextSeq: s.idxNextSeq, eventID: s.idxEventID,
		firstSeg: s.firstSeg, total: uint64(s.idx.total)}
	for i, st := range States() {
		m.counts[i] = uint64(max(0, s.idx.counts[st]))
	}
	return m
}

// checkpoint writes the patches changed since the last checkpoint to
// index.db with the watermark they are at. s.mu is held only to copy them
// (work in proportion to what changed, never to the history), not while
// writing; then entries not changed since and not live leave memory.
func (s *Store) checkpoint() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.mu.Lock()
	m := s.ckMetaLocked()
	if len(s.idx.dirty) == 0 && len(s.idx.expired) == 0 && m == s.ckLast {
		s.mu.Unlock()
		return nil
	}
	items := make([]ckItem, 0, len(s.idx.dirty))
	for id := range s.idx.dirty {
		if e := s.idx.patches[id]; e != nil {
			items = append(items, ckItem{id, e.toDB(), e.gone})
		}
	}
	tombs := make([]tomb, 0, len(s.idx.expired))
	for id, at := range s.idx.expired {
		tombs = append(tombs, tomb{id, at})
	}
	clear(s.idx.dirty)
	gen := s.idx.gen
	s.mu.Unlock()

	err := writeCheckpoint(s.db, items, tombs, m)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for _, it := range items {
			s.idx.dirty[it.id] = struct{}{}
		}
		return fmt.Errorf("write the index checkpoint %s: %w", filepath.Join(filepath.Base(s.dir), indexName), err)
	}
	s.ckLast = m
	dropped := false
	for _, it := range items {
		if e := s.idx.patches[it.id]; e != nil && e.gen <= gen && !e.live() {
			delete(s.idx.patches, it.id)
			dropped = true
		}
	}
	for _, t := range tombs {
		delete(s.idx.expired, t.id)
		dropped = true
	}
	if dropped {
		s.idx.dropGen.Add(1)
	}
	return nil
}

// checkpointLoop writes a checkpoint every Options.CheckpointInterval when
// anything changed, sooner when many patches did, until Close.
func (s *Store) checkpointLoop() {
	defer close(s.ckDone)
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.ckStop:
			return
		case <-t.C:
		case <-s.ckKick:
		}
		if err := s.checkpoint(); err != nil {
			if !failing {
				s.log.Error("index checkpoint failed; the journal has everything, Open replays more of it until one succeeds", "err", err)
			}
			failing = true
		} else {
			failing = false
		}
	}
}

// kickCheckpoint asks for a checkpoint now, without waiting. s.mu is held.
func (s *Store) kickCheckpointLocked() {
	if len(s.idx.dirty) >= ckMaxDirty {
		select {
		case s.ckKick <- struct{}{}:
		default:
		}
	}
}
