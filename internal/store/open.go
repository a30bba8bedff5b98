package store

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// prepareDir creates the directories, making new entries durable, and
// takes the lock.
func (s *Store) prepareDir() error {
	for _, d := range []string{s.dir, filepath.Join(s.dir, "blobs")} {
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return ioFailure("create", d, err)
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return ioFailure("sync", filepath.Dir(d), err)
		}
	}
	lockPath := filepath.Join(s.dir, "LOCK")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return ioFailure("open", lockPath, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return fmt.Errorf("lock %s: %w (is another patchd using it?)", lockPath, err)
	}
	// Left by a compaction (patchd before segments) that a crash cut
	// short; the journal beside it is whole.
	if err := os.Remove(filepath.Join(s.dir, "journal.compact")); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return ioFailure("remove", filepath.Join(filepath.Base(s.dir), "journal.compact"), err)
	}
	s.lockF = f
	return nil
}

// segments returns the segment files there are, creating the first one
// in a new store, and refuses a gap in their numbers: the patches stored
// in a missing segment would be lost without a word.
func (s *Store) segments() ([]uint32, error) {
	segs, err := listSegments(filepath.Join(s.dir, segDirName))
	if err != nil {
		return nil, ioFailure("read", filepath.Join(filepath.Base(s.dir), segDirName), err)
	}
	if len(segs) == 0 {
		f, err := createSegment(s.segPath(1), s.segLabel(1), true)
		if err != nil {
			return nil, err
		}
		f.Close()
		return []uint32{1}, nil
	}
	return segs, nil
}

// openSegment opens segment n for replay. The active one is opened for
// writing and a header a crash cut short is rewritten (openJournal).
func (s *Store) openSegment(n uint32, active bool) (*os.File, int64, error) {
	if active {
		return openJournal(s.segPath(n), s.segLabel(n))
	}
	f, err := os.Open(s.segPath(n))
	if err != nil {
		return nil, 0, ioFailure("open", s.segLabel(n), err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, ioFailure("stat", s.segLabel(n), err)
	}
	head := make([]byte, len(fileHeader))
	if _, err := f.ReadAt(head, 0); err != nil || string(head) != fileHeader {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: not a patchd journal segment (header %q)", s.segLabel(n), head)
	}
	return f, fi.Size(), nil
}

// load opens the index and replays the journal from the checkpoint's
// watermark on (or, without a checkpoint to trust, every segment), and
// makes the highest-numbered segment the active one: its torn tail cut,
// and a new segment started after it if it had damage in the middle.
func (s *Store) load() error {
	if err := s.migrateLegacy(); err != nil {
		return err
	}
	segs, err := s.segments()
	if err != nil {
		return err
	}
	sizes := make(map[uint32]int64, len(segs))
	for _, n := range segs {
		fi, err := os.Stat(s.segPath(n))
		if err != nil {
			return ioFailure("stat", s.segLabel(n), err)
		}
		sizes[n] = fi.Size()
	}
	m, live, ok, err := s.openIndex(segs, sizes)
	if err != nil {
		return err
	}
	s.idx = newIndex()
	s.wm, s.wmLast, s.wmCRC = m.wm, m.last, m.crc
	s.idxNextSeq, s.idxEventID, s.firstSeg = max(m.nextSeq, 1), m.eventID, m.firstSeg
	s.idx.total = int(m.total)
	for i, st := range States() {
		s.idx.counts[st] = int(m.counts[i])
	}
	if ok {
		s.ckLast = m
		if err := s.view(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bExpired); b != nil {
				k, _ := b.Cursor().First()
				s.dbTombs.Store(k != nil)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("open %s: %w", filepath.Join(filepath.Base(s.dir), indexName), err)
		}
		s.loadLive(live)
	} else if gaps := segs[0] > 1 || int(segs[len(segs)-1]-segs[0])+1 != len(segs); gaps {
		// Dropped by retention, or lost: without the index, which said
		// which, the rebuild takes what is there.
		s.log.Warn("journal segments are missing (dropped by retention, or lost); patches stored only in them are not in the rebuilt index",
			"first", s.segLabel(segs[0]), "segments", len(segs), "last", s.segLabel(segs[len(segs)-1]))
	}
	start := time.Now()
	for i, n := range segs {
		if n < m.wm.seg {
			continue
		}
		active := i == len(segs)-1
		f, size, err := s.openSegment(n, active)
		if err != nil {
			return err
		}
		from := int64(len(fileHeader))
		if n == m.wm.seg {
			from = m.wm.off
		}
		res, err := s.replay(n, f, from, size)
		if err != nil {
			f.Close()
			return err
		}
		if !active {
			s.oldBytes += size
			f.Close()
			continue
		}
		if res.end < size && !res.zeroTail {
			err := f.Truncate(res.end)
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				return ioFailure("truncate", s.segLabel(n), err)
			}
		}
		s.seg, s.name = n, s.segLabel(n)
		s.tail, s.size, s.alloc = res.end, res.end, res.end
		if res.zeroTail {
			s.alloc = size
		}
		s.jf = osJournal{f}
		if s.opts.wrapJournal != nil {
			s.jf = s.opts.wrapJournal(s.jf)
		}
		if res.damaged {
			// Records are found by their offsets: the damaged segment
			// stays as it is, and new records go to a new one.
			if err := s.rollSegment("damage in the middle of the active segment"); err != nil {
				return err
			}
		}
	}
	for _, n := range segs {
		if n < m.wm.seg {
			s.oldBytes += sizes[n]
		}
	}
	s.idx.markRecovery()
	// Seqs of expired patches are not given again.
	s.idxNextSeq = max(s.idxNextSeq, s.idx.expiredSeq+1)
	s.nextSeq = s.idxNextSeq
	s.mu.Lock()
	s.publishStatsLocked() // no committer yet
	s.mu.Unlock()
	if !ok {
		if err := s.checkpoint(); err != nil {
			return err
		}
		if s.idx.total > 0 {
			s.log.Info("index built from the journal", "patches", s.idx.total, "took", time.Since(start).Round(time.Millisecond).String())
		}
	}
	return nil
}

// loadLive brings the live patches (queued, applying) index.db had
// (readLive) into memory, where the worker's queue is.
//
// Its work is in proportion to the backlog, and every start, restart and
// takeover waits for it: one pread and one decode per patch took ~7 µs
// a patch, 140-210 ms for 20,000 queued. The patches' metas are read a
// run at a time (records of consecutive Seqs are near each other in the
// journal) and decoded on every CPU.
func (s *Store) loadLive(items []ckItem) {
	ents := make([]*entry, len(items))
	errs := make([]error, len(items))
	load := func(i int, meta []byte) {
		var e entry
		if meta == nil {
			e, errs[i] = s.entryFromDB(items[i].id, items[i].e, false)
		} else {
			e, errs[i] = s.entryOfMeta(items[i].id, items[i].e, meta, false)
		}
		if errs[i] == nil {
			ents[i] = &e
		}
	}
	runs := liveRuns(items)
	workers := min(runtime.GOMAXPROCS(0), max(1, len(items)/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for r := w; r < len(runs); r += workers {
				lo, hi := runs[r][0], runs[r][1]
				first, last := items[lo].e.meta, items[hi-1].e
				n := last.meta.off + last.metaLen - first.off
				if cap(buf) < int(n) {
					buf = make([]byte, n)
				}
				span := buf[:n]
				if err := s.readers.readAt(first.seg, span, first.off); err != nil {
					// Each on its own, to say which.
					for i := lo; i < hi; i++ {
						load(i, nil)
					}
					continue
				}
				for i := lo; i < hi; i++ {
					de := items[i].e
					at := de.meta.off - first.off
					// The entry keeps no part of the meta: the decoder copies
					// every string it returns.
					load(i, span[at:at+de.metaLen:at+de.metaLen])
				}
			}
		})
	}
	wg.Wait()
	for i, it := range items {
		if errs[i] != nil {
			// Damage in the journal after the checkpoint took the record
			// in: the patch cannot be worked on, the others can.
			s.log.Error("a queued or applying patch's record cannot be read; it is left out of the queue", "id", it.id, "err", errs[i])
			continue
		}
		ne := ents[i]
		ne.dbLive = it.dbLive
		s.idx.set(it.id, ne)
		if ne.p.State == StateQueued {
			heap.Push(&s.idx.queued, ne)
		}
	}
}

// liveRunMax is the most of the journal loadLive reads at once.
const liveRunMax = 256 << 10

// liveRuns cuts items into runs [lo, hi) whose metas are in one segment,
// in order, within liveRunMax of the journal from the first's start to
// the last's end.
func liveRuns(items []ckItem) [][2]int {
	var runs [][2]int
	for lo := 0; lo < len(items); {
		first := items[lo].e.meta
		hi := lo + 1
		for ; hi < len(items); hi++ {
			prev, m := items[hi-1].e, items[hi].e
			if m.meta.seg != first.seg || m.meta.off < prev.meta.off+prev.metaLen ||
				m.meta.off+m.metaLen-first.off > liveRunMax {
				break
			}
		}
		runs = append(runs, [2]int{lo, hi})
		lo = hi
	}
	return runs
}

// checkBlobs refuses a record whose inline blobs do not fill its body
// exactly, and a put with any: such a record was not written by patchd.
func checkBlobs(r record, blobs []diskBlob) error {
	if len(blobs) == 0 {
		return nil
	}
	if n := blobsLen(blobs); r.kind != kindUpdate || n != r.bodyLen {
		return fmt.Errorf("record of kind %d: inline blobs of %d bytes in a body of %d", r.kind, n, r.bodyLen)
	}
	return nil
}

// replay applies segment seg from offset from on to the index. Decoding
// the records' JSON is most of the work, so records are taken in batches
// whose metas are decoded on every core, then applied in journal order.
// Every ckMaxDirty patches changed, a checkpoint is written, so that
// replaying a long journal keeps no more than that in memory.
func (s *Store) replay(seg uint32, f *os.File, from, size int64) (scanResult, error) {
	name := s.segLabel(seg)
	var (
		batch    []scanned
		arena    []byte // the batch's metas; r.meta aliases the scan buffer
		applyErr error
	)
	flush := func() error {
		decodeAll(batch)
		for i := range batch {
			if err := s.apply(&batch[i]); err != nil {
				return fmt.Errorf("replay %s at offset %d: %w", name, batch[i].at.off, err)
			}
		}
		batch, arena = batch[:0], arena[:0]
		s.idx.snapAll()
		if len(s.idx.dirty) >= ckMaxDirty {
			return s.checkpoint()
		}
		return nil
	}
	res, err := scanJournal(f, from, size, name, s.log, func(r record, off int64) error {
		if len(arena)+len(r.meta) > cap(arena) && len(batch) > 0 {
			// A meta must not move once sliced: flush before growing.
			if applyErr = flush(); applyErr != nil {
				return errStopScan
			}
		}
		if cap(arena) < len(r.meta) {
			arena = make([]byte, 0, max(len(r.meta), replayArena))
		}
		at := len(arena)
		arena = append(arena, r.meta...)
		r.meta = arena[at:len(arena):len(arena)]
		batch = append(batch, scanned{r: r, at: ref{seg, off}})
		return nil
	})
	if applyErr != nil {
		return res, applyErr
	}
	if err != nil {
		return res, err
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, nil
}

// replayArena is the size of a replay batch's metas together.
const replayArena = 4 << 20

// errStopScan ends a scan whose caller has its own error to report.
var errStopScan = errors.New("scan stopped")

// scanned is one record of a replay batch, and what decoding it gave.
type scanned struct {
	r     record
	at    ref // where the record starts
	p     Patch
	blobs []diskBlob
	diff  span
	err   error
}

// decodeAll decodes the metas of a batch, on as many goroutines as there
// are cores to run them.
func decodeAll(batch []scanned) {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(batch)/64))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(batch); i += workers {
				b := &batch[i]
				if b.r.kind == kindExpire {
					continue // not a patch record: apply decodes it
				}
				b.p, b.blobs, b.diff, b.err = decodeMeta(b.r.meta, b.r.seq)
			}
		})
	}
	wg.Wait()
}

// apply adds one decoded record to the index, and counts its event.
func (s *Store) apply(b *scanned) error {
	r, at, p, blobs := b.r, b.at, b.p, b.blobs
	if r.kind == kindExpire {
		if err := s.applyExpireRecord(r); err != nil {
			return err
		}
		s.wm, s.wmLast, s.wmCRC = ref{at.seg, at.off + r.size}, at, r.crc
		return nil
	}
	if b.err != nil {
		return fmt.Errorf("record of kind %d: %w", r.kind, b.err)
	}
	if err := checkBlobs(r, blobs); err != nil {
		return err
	}
	body := ref{at.seg, at.off + r.bodyAt}
	meta := ref{at.seg, at.off + metaOffset}
	base, found, err := s.base(p.ID)
	if err != nil {
		return err
	}
	var e *entry
	switch r.kind {
	case kindPut:
		if found {
			s.log.Warn("journal repeats a patch; keeping the first", "segment", s.segLabel(at.seg), "id", p.ID, "offset", at.off)
			break
		}
		e = s.idx.put(p, body, r.bodyLen)
		s.idxEventID++
	case kindRetry:
		var bp *entry
		if found {
			bp = &base
		}
		e = s.idx.reattempt(p, body, r.bodyLen, bp)
		s.idxEventID++
	case kindUpdate:
		if !found {
			s.log.Warn("journal updates an unknown patch; ignoring it", "segment", s.segLabel(at.seg), "id", p.ID, "offset", at.off)
			break
		}
		var prev State
		e, prev = s.idx.update(p, &base)
		e.setBlobs(body, blobs)
		if eventName(prev, p.State) != "" {
			s.idxEventID++
		}
	default:
		return fmt.Errorf("unknown record kind %d (written by a newer patchd?)", r.kind)
	}
	if e != nil {
		e.meta, e.metaLen = meta, int64(len(r.meta))
		e.metaCRC = crc32.Checksum(r.meta, castagnoli())
		e.setDiff(meta, r.meta, b.diff)
		s.idxNextSeq = max(s.idxNextSeq, p.Seq+1)
	}
	s.wm, s.wmLast, s.wmCRC = ref{at.seg, at.off + r.size}, at, r.crc
	return nil
}

// base returns the patch with the given id as the index has it, from
// memory or index.db; used by replay, before the Store is shared.
func (s *Store) base(id string) (entry, bool, error) {
	if e := s.idx.patches[id]; e != nil {
		return *e, !e.gone, nil
	}
	e, ok, _, err := s.fromDB(id)
	return e, ok, err
}
