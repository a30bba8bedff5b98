package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
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
// It returns the checkpoint's record and its live patches, or ok=false
// after moving an index.db that cannot be trusted aside (index.db.bad) and
// creating an empty one, which the caller rebuilds from the segments. A
// checkpoint that refers to a segment that is not there is an error:
// patches would be lost.
func (s *Store) openIndex(segs []uint32, sizes map[uint32]int64) (m ckMeta, live []ckItem, ok bool, err error) {
	path := filepath.Join(s.dir, indexName)
	label := filepath.Join(filepath.Base(s.dir), indexName)
	if _, err := os.Stat(path); err == nil {
		db, m, live, why, err := s.tryIndex(path, segs, sizes)
		if err != nil {
			return m, nil, false, err
		}
		if why == "" {
			s.db = db
			return m, live, true, nil
		}
		s.log.Warn("index checkpoint not usable; moving it aside to "+indexName+".bad and rebuilding the index from every journal segment (work in proportion to the history, this once)",
			"index", label, "why", why)
		if err := os.Rename(path, path+".bad"); err != nil {
			return m, nil, false, ioFailure("rename", label, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return m, nil, false, ioFailure("stat", label, err)
	} else if sizes[segs[len(segs)-1]] > int64(len(fileHeader)) || len(segs) > 1 {
		s.log.Info("no index checkpoint; building the index from every journal segment (work in proportion to the history, this once)",
			"index", label)
	}
	db, err := s.openBolt(path)
	if err != nil {
		return m, nil, false, ioFailure("create", label, err)
	}
	if err := syncDir(s.dir); err != nil {
		db.Close()
		return m, nil, false, ioFailure("sync", filepath.Base(s.dir), err)
	}
	s.db = db
	return ckMeta{wm: ref{segs[0], int64(len(fileHeader))}, nextSeq: 1, firstSeg: segs[0]}, nil, false, nil
}

// tryIndex opens index.db, checks it and reads its live patches; why says
// why it cannot be trusted (then it is closed). A fault reading a damaged
// file (bbolt panics, or the mapping faults past a cut file's end) is such
// a why, and so is a damaged entry among the live patches.
func (s *Store) tryIndex(path string, segs []uint32, sizes map[uint32]int64) (db *bolt.DB, m ckMeta, live []ckItem, why string, err error) {
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
		return nil, m, nil, "", ioFailure("stat", indexName, err)
	}
	db, err = s.openBolt(path)
	if err != nil {
		return nil, m, nil, fmt.Sprintf("it does not open: %v", err), nil
	}
	dropped := map[uint32]bool{}
	var version byte
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			why = fmt.Sprintf("it is cut short (%d bytes, its pages end at %d)", fi.Size(), tx.Size())
			return nil
		}
		if m, version, why = readCkMeta(tx); why != "" {
			return nil
		}
		if b := tx.Bucket(bDropped); b != nil {
			return b.ForEach(func(k, _ []byte) error {
				if len(k) == 4 {
					dropped[binary.BigEndian.Uint32(k)] = true
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && why == "" {
		why, err = s.checkWatermark(m, segs, sizes, dropped)
	}
	if err == nil && why == "" && version < indexVersion {
		if merr := migrate(db, version); merr != nil {
			why = fmt.Sprintf("moving it from format %d to %d failed: %v", version, indexVersion, merr)
		} else {
			s.log.Info("index checkpoint moved from format " + strconv.Itoa(int(version)) + " to " + strconv.Itoa(indexVersion))
		}
	}
	if err == nil && why == "" {
		live, why, err = readLive(db)
	}
	if err != nil || why != "" {
		db.Close()
		return nil, m, nil, why, err
	}
	return db, m, live, "", nil
}

// readLive reads the live patches (queued, applying) from index.db's live
// chunks: work in proportion to them, not to the history. why says which
// entry is damaged (a chunk that does not decode, an entry whose Seq is
// not in its chunk's range or not after the one before, or not live):
// such an index.db is not trusted.
func readLive(db *bolt.DB) (live []ckItem, why string, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bLive)
		if b == nil {
			return nil
		}
		// The chunks first, then the entries into a slice of their number:
		// grown by append, the slice's copies took a third of an Open
		// with 20,000 queued.
		type chunk struct {
			key  uint64
			recs []liveRec
		}
		var chunks []chunk
		total := 0
		err := b.ForEach(func(k, v []byte) error {
			recs, derr := decodeChunk(v)
			if derr != nil || len(k) != 8 {
				why = fmt.Sprintf("its live patch entry under key %x is damaged (the chunk does not decode)", k)
				return errStopScan
			}
			chunks = append(chunks, chunk{binary.BigEndian.Uint64(k), recs})
			total += len(recs)
			return nil
		})
		if err != nil {
			return err
		}
		live = make([]ckItem, 0, total)
		for _, c := range chunks {
			key, prev := c.key, uint64(0)
			for _, r := range c.recs {
				e, derr := r.entry()
				if derr != nil || e.seq != r.seq || chunkOf(r.seq) != key || r.seq <= prev || !e.live() {
					why = fmt.Sprintf("its live patch entry under key %016x (id %q, Seq %d) is damaged", key, r.id, r.seq)
					return errStopScan
				}
				prev = r.seq
				live = append(live, ckItem{id: r.id, e: e, dbLive: r.seq})
			}
		}
		return nil
	})
	if why != "" {
		return nil, why, nil
	}
	return live, "", err
}

// checkWatermark checks that the segments are the journal index.db was
// made from: the watermark's segment is there and long enough, and it has
// the last record the checkpoint took in at its place, with its CRC. A
// segment the checkpoint needs and that is not there is an error.
func (s *Store) checkWatermark(m ckMeta, segs []uint32, sizes map[uint32]int64, dropped map[uint32]bool) (why string, err error) {
	first, last := segs[0], segs[len(segs)-1]
	// Every segment from the first the index refers to on is there,
	// unless it was dropped because no patch kept referred to it.
	for n := min(max(m.firstSeg, 1), first); n < last; n++ {
		if _, ok := sizes[n]; !ok && !dropped[n] {
			return "", fmt.Errorf("open %s: journal segment %s is missing: the patches stored in it would be lost; restore it from a backup "+
				"(or, if this %s is an older copy and retention dropped the segment since, move it aside: the index is then rebuilt from the segments there are)",
				filepath.Base(s.dir), s.segLabel(n), indexName)
		}
	}
	if m.wm.seg > last {
		return "", fmt.Errorf("open %s: journal segment %s is missing: the index took in records from it, which would be lost; restore it from a backup",
			filepath.Base(s.dir), s.segLabel(m.wm.seg))
	}
	if _, ok := sizes[m.wm.seg]; !ok {
		return "", fmt.Errorf("open %s: journal segment %s is missing: the index took in records from it; restore it from a backup",
			filepath.Base(s.dir), s.segLabel(m.wm.seg))
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
// index.db with the watermark they are at. s.mu is held only to take the
// set of their snapshots (taken at each change: index.snap) and put an
// empty one in its place, not while writing; then entries not changed
// since and not live leave memory.
func (s *Store) checkpoint() error {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	spare := s.ckSpare
	if spare == nil {
		spare = make(map[string]*ckItem, max(dirtyHint, s.ckLastN+s.ckLastN/4))
	}
	s.mu.Lock()
	s.idx.snapAll()
	m := s.ckMetaLocked()
	if len(s.idx.dirty) == 0 && len(s.idx.expired) == 0 && m == s.ckLast {
		s.mu.Unlock()
		return nil
	}
	set := s.idx.dirty
	s.ckLastN = len(set)
	s.idx.dirty = spare
	s.ckSpare = nil
	s.idx.epoch++
	tombs := make([]tomb, 0, len(s.idx.expired))
	for id, at := range s.idx.expired {
		tombs = append(tombs, tomb{id, at})
	}
	gen := s.idx.gen
	s.mu.Unlock()
	if len(tombs) > 0 {
		// Before index.db can have them: lookups then look for them.
		s.dbTombs.Store(true)
	}
	// items are the snapshots; leave, those that were not live, whose
	// entries may leave memory after the write (a live one that changed
	// since has a later gen anyway). Most under a burst are live, and the
	// pass under s.mu below reads only leave.
	items, leave := s.ckBuf[:0], s.ckLeave[:0]
	expired := false
	for _, it := range set {
		items = append(items, it)
		if it.liveSeq() == 0 {
			leave = append(leave, it)
		}
		expired = expired || it.gone
	}

	// The next lookup snapshot is begun before entries leave the overlay
	// below: a lookup that misses them there finds them in it.
	err := s.writeIndex(func() error {
		if s.opts.ckFail != nil {
			if err := s.opts.ckFail(); err != nil {
				return err
			}
		}
		return writeCheckpoint(s.db, items, tombs, m)
	})

	s.mu.Lock()
	if err != nil {
		// The snapshots go back into the set, as they were: index.db has
		// what it had. An entry changed since has a new snapshot, which
		// started from this one's end; it starts from this one's start.
		for _, it := range items {
			e := s.idx.patches[it.id]
			switch {
			case e == nil:
			case e.ckEpoch == s.idx.epoch-1:
				e.ckEpoch = s.idx.epoch
				s.idx.dirty[it.id] = it
			default:
				if cur := s.idx.dirty[it.id]; cur != nil {
					cur.fresh, cur.dbLive = it.fresh, it.dbLive
				}
			}
		}
		s.mu.Unlock()
		s.keepBufs(set, items, leave)
		return fmt.Errorf("write the index checkpoint %s: %w", filepath.Join(filepath.Base(s.dir), indexName), err)
	}
	s.ckLast = m
	if expired {
		s.expiredSinceDrop = true
	}
	dropped := false
	for _, it := range leave {
		// The entry snapshot, unless it changed since (gen) or was
		// replaced (a new attempt: its entry's gen is later too).
		if e := it.ent; e.gen <= gen && !e.live() && s.idx.patches[it.id] == e {
			s.idx.drop(it.id)
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
	s.mu.Unlock()
	s.keepBufs(set, items, leave)
	return nil
}

// keepBufs keeps a checkpoint's set and slices for the next one, cleared
// (they hold strings and pointers), unless the set was over twice
// ckMaxDirty: a burst's are not kept for ever. s.ckMu is held.
func (s *Store) keepBufs(set map[string]*ckItem, items, leave []*ckItem) {
	clear(items)
	clear(leave)
	if len(set) > 2*ckMaxDirty {
		s.ckSpare, s.ckBuf, s.ckLeave = nil, nil, nil
		return
	}
	clear(set)
	s.ckSpare, s.ckBuf, s.ckLeave = set, items[:0], leave[:0]
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
			continue
		}
		failing = false
		s.maybeDropSegments()
	}
}

// maybeDropSegments drops segments after a checkpoint that removed
// expired patches from index.db; a failure is logged (the next one tries
// again).
func (s *Store) maybeDropSegments() {
	s.mu.Lock()
	due := s.expiredSinceDrop
	s.expiredSinceDrop = false
	s.mu.Unlock()
	if !due {
		return
	}
	if _, err := s.dropSegments(); err != nil {
		s.log.Warn("could not drop journal segments no patch refers to; trying again after the next expiry", "err", err)
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

// dropSegments removes the segments no patch in index.db refers to any
// more (retention expired them all) and that the checkpoint has taken in
// whole: those before the watermark's segment. Records written since the
// checkpoint all lie at or after the watermark, and an entry changed since
// refers to the segments its index.db entry does or to later ones, so
// nothing in memory refers to them either. Each is listed as dropped in
// index.db first, then removed: a crash between leaves a file the next
// drop removes. It returns how many were dropped.
func (s *Store) dropSegments() (int, error) {
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	s.mu.Lock()
	wm := s.ckLast.wm.seg
	s.mu.Unlock()
	segs, err := listSegments(filepath.Join(s.dir, segDirName))
	if err != nil {
		return 0, ioFailure("read", filepath.Join(filepath.Base(s.dir), segDirName), err)
	}
	var drop []uint32
	err = s.view(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bSegRefs)
		if refs == nil {
			return nil
		}
		for _, n := range segs {
			if n < wm && refs.Get(binary.BigEndian.AppendUint32(nil, n)) == nil {
				drop = append(drop, n)
			}
		}
		return nil
	})
	if err != nil || len(drop) == 0 {
		return 0, err
	}
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	err = s.writeIndex(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bDropped)
			if err != nil {
				return err
			}
			for _, n := range drop {
				if err := b.Put(binary.BigEndian.AppendUint32(nil, n), now); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("record dropped segments in %s: %w", indexName, err)
	}
	var freed int64
	for _, n := range drop {
		s.readers.forget(n)
		if fi, err := os.Stat(s.segPath(n)); err == nil {
			freed += fi.Size()
		}
		if err := os.Remove(s.segPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, ioFailure("remove", s.segLabel(n), err)
		}
		s.log.Info("journal segment dropped: no patch kept refers to it", "segment", s.segLabel(n))
	}
	if err := syncDir(filepath.Join(s.dir, segDirName)); err != nil {
		return 0, ioFailure("sync", filepath.Join(filepath.Base(s.dir), segDirName), err)
	}
	s.mu.Lock()
	s.oldBytes -= freed
	s.mu.Unlock()
	return len(drop), nil
}

// indexGrowStep is how far ahead of its pages bbolt grows index.db's
// file. bbolt's own step (16 MiB once the mapping is larger than that,
// as the 1 GiB one always is) would make a new store's index.db a 16 MiB
// file (sparse, but that is what ls, backups and copies see).
const indexGrowStep = 1 << 20

// openBolt opens index.db with boltOptions and indexGrowStep.
func (s *Store) openBolt(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, s.boltOptions())
	if err != nil {
		return nil, err
	}
	db.AllocSize = indexGrowStep
	return db, nil
}

// boltOptions are index.db's: InitialMmapSize maps 1 GiB of address space
// from the start (not memory: only pages read are resident), so that
// growing index.db does not remap it. A remap copies every node the
// checkpoint's transaction holds and makes each Submit's lookup wait for
// it (bbolt's mmap lock).
func (s *Store) boltOptions() *bolt.Options {
	size := s.opts.mmapSize
	if size == 0 {
		size = 1 << 30
	}
	return &bolt.Options{Timeout: time.Second, NoSync: s.opts.NoSync, InitialMmapSize: size}
}
