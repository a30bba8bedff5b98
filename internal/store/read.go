package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Reading the index: the overlay in memory wins over index.db, which holds
// every patch as the last checkpoint wrote it. index.db is never read with
// s.mu held. A checkpoint that drops entries from the overlay bumps
// dropGen after index.db has them, so a reader that saw an id missing from
// the overlay and then read index.db knows its answer is current if
// dropGen did not move meanwhile. The lookup snapshot (snapshot.go) keeps
// this: a checkpoint begins the next one after its commit and before it
// drops entries, so a lookup that loaded dropGen after a drop reads
// index.db as that checkpoint left it or later.

// view runs fn in a read transaction of index.db; a closed store is
// ErrClosed.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// fromDB reads a patch from index.db and its newest record's meta from the
// journal. With keepDiff the patch holds its diff; else the entry says
// where it is, as the overlay's entries do.
// expiredAt is when it expired, if retention removed it (0 if not).
//
// Every Submit of a new id comes here to learn that index.db does not have
// it, so it looks in the lookup snapshot (snapshot.go) when there is one,
// else in a transaction begun directly rather than through view's
// closure; the tombstones are looked at only if index.db has any.
func (s *Store) fromDB(id string) (e entry, ok bool, expiredAt int64, err error) {
	withTombs := s.dbTombs.Load()
	de, ok, expiredAt, shared, err := s.snap.get(id, withTombs)
	if !shared {
		de, ok, expiredAt, err = s.fromOwnTx(id, withTombs)
	}
	if err != nil || !ok {
		return entry{}, false, expiredAt, err
	}
	e, err = s.entryFromDB(id, de, false)
	return e, err == nil, 0, err
}

// fromOwnTx is the lookup of fromDB in a read transaction of its own.
func (s *Store) fromOwnTx(id string, withTombs bool) (de dbEntry, ok bool, expiredAt int64, err error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return dbEntry{}, false, 0, err
	}
	de, ok, err = getEntry(tx, id)
	if err == nil && !ok && withTombs {
		expiredAt = tombIn(tx.Bucket(bExpired), id)
	}
	// A read transaction's rollback only releases it.
	_ = tx.Rollback()
	return de, ok, expiredAt, err
}

// getEntry reads a patch's entry in a transaction.
func getEntry(tx *bolt.Tx, id string) (dbEntry, bool, error) {
	return entryIn(tx.Bucket(bIDs), id)
}

// entryIn reads a patch's entry in ids, index.db's ids bucket (nil: none).
func entryIn(ids *bolt.Bucket, id string) (dbEntry, bool, error) {
	if ids == nil {
		return dbEntry{}, false, nil
	}
	v := ids.Get([]byte(id))
	if v == nil {
		return dbEntry{}, false, nil
	}
	e, err := decodeEntry(v)
	if err != nil {
		return e, false, fmt.Errorf("index entry of %s: %w", id, err)
	}
	return e, true, nil
}

// tombIn is when patch id expired, if tombs, index.db's tombstones
// bucket (nil: none), has it; else 0.
func tombIn(tombs *bolt.Bucket, id string) int64 {
	if tombs == nil {
		return 0
	}
	if v := tombs.Get([]byte(id)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// entryFromDB makes an entry of what index.db has of patch id, reading
// the patch from its newest record's meta.
func (s *Store) entryFromDB(id string, de dbEntry, keepDiff bool) (entry, error) {
	meta, err := s.read(de.meta, de.metaLen, "record of "+id)
	if err != nil {
		return entry{}, err
	}
	return s.entryOfMeta(id, de, meta, keepDiff)
}

// entryOfMeta is entryFromDB with the meta read.
func (s *Store) entryOfMeta(id string, de dbEntry, meta []byte, keepDiff bool) (entry, error) {
	if crc32.Checksum(meta, castagnoli()) != de.metaCRC {
		return entry{}, fmt.Errorf("record of %s in %s at offset %d: %w: checksum mismatch", id, s.segLabel(de.meta.seg), de.meta.off, errCorrupt)
	}
	p, _, sp, err := decodeMeta(meta, de.seq)
	if err != nil || p.ID != id {
		return entry{}, fmt.Errorf("record of %s in %s at offset %d: not its record (%v)", id, s.segLabel(de.meta.seg), de.meta.off, err)
	}
	e := entry{body: de.body, bodyLen: de.bodyLen, meta: de.meta, metaLen: de.metaLen, metaCRC: de.metaCRC}
	e.setPatch(p)
	e.setBlobs(de.blob, de.blobs)
	if !keepDiff {
		e.setDiff(de.meta, meta, sp)
	}
	return e, nil
}

// findLocked returns a copy of patch id's entry, or, for a patch
// retention removed, when it expired. s.mu is held on entry and on
// return, but not while index.db is read: the caller checks again what
// may have changed meanwhile (closing, inflight).
func (s *Store) findLocked(id string) (entry, bool, int64, error) {
	for {
		if e := s.idx.patches[id]; e != nil && !e.gone {
			return e.copyEntry(), true, 0, nil
		}
		if at, ok := s.idx.expired[id]; ok {
			return entry{}, false, at, nil
		}
		gen := s.idx.dropGen.Load()
		s.mu.Unlock()
		e, ok, at, err := s.fromDB(id)
		s.mu.Lock()
		if err != nil {
			return entry{}, false, 0, err
		}
		if s.idx.dropGen.Load() == gen && s.idx.patches[id] == nil {
			return e, ok, at, nil
		}
	}
}

// lookup is what fromDB found, read before taking s.mu, and the dropGen
// it holds for.
type lookup struct {
	gen       uint64
	e         entry
	ok        bool
	expiredAt int64
	err       error
}

// prefind reads id from index.db without s.mu, for findHintLocked.
func (s *Store) prefind(id string) lookup {
	l := lookup{gen: s.idx.dropGen.Load()}
	l.e, l.ok, l.expiredAt, l.err = s.fromDB(id)
	return l
}

// findHintLocked is findLocked that takes what prefind read when it still
// holds (no checkpoint dropped entries since, and the overlay does not
// have id), so that the mutex is taken once.
func (s *Store) findHintLocked(id string, l lookup) (entry, bool, int64, error) {
	if e := s.idx.patches[id]; e == nil && l.err == nil && l.gen == s.idx.dropGen.Load() {
		if at, ok := s.idx.expired[id]; ok {
			return entry{}, false, at, nil
		}
		return l.e, l.ok, l.expiredAt, nil
	}
	return s.findLocked(id)
}

// find is findLocked for callers without s.mu.
func (s *Store) find(id string) (entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok, _, err := s.findLocked(id)
	return e, ok, err
}

// inOverlay returns a copy of the overlay's entry of id, if it has one
// (gone, for a patch expired since the last checkpoint).
func (s *Store) inOverlay(id []byte) (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.idx.patches[string(id)]; e != nil {
		return e.copyEntry(), true
	}
	return entry{}, false
}

// Get returns the patch with the given id. A patch index.db has but whose
// record cannot be read is logged and reported missing.
func (s *Store) Get(id string) (Patch, bool) {
	e, ok, err := s.find(id)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			s.log.Error("read a patch", "id", id, "err", err)
		}
		return Patch{}, false
	}
	if !ok {
		return Patch{}, false
	}
	return s.loaded(e.patch(), e.rest().diff), true
}

// Body returns the body the patch was submitted with, read from disk.
func (s *Store) Body(id string) ([]byte, error) {
	e, ok, err := s.find(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("patch %s: %w", id, ErrNotFound)
	}
	return s.read(e.body, e.bodyLen, "body of "+id)
}

// DefaultListLimit is the page size List uses for a limit of 0 or less.
const DefaultListLimit = 50

// List returns patches newest first, only those in state unless state is
// "". cursor is "" for the first page or the next cursor a previous call
// returned; next is "" on the last page. A cursor List did not produce
// gives an empty page. It reads a page's worth of index.db, whatever the
// history's length.
func (s *Store) List(cursor string, limit int, state State) (ps []Patch, next string) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	before := uint64(math.MaxUint64)
	if cursor != "" {
		seq, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, ""
		}
		before = seq
	}
	var page []listed
	for range 4 {
		var ok bool
		var err error
		if page, ok, err = s.listOnce(before, limit, state); err != nil {
			if !errors.Is(err, ErrClosed) {
				s.log.Error("list patches", "err", err)
			}
			return nil, ""
		}
		if ok {
			break
		}
	}
	if len(page) > limit {
		page = page[:limit]
		next = strconv.FormatUint(page[limit-1].p.Seq, 10)
	}
	ps = make([]Patch, len(page))
	for i, l := range page {
		ps[i] = s.loaded(l.p, l.diff)
	}
	return ps, next
}

// listOnce returns up to limit+1 patches before seq before, newest first;
// ok is false if a checkpoint dropped entries meanwhile (try again).
func (s *Store) listOnce(before uint64, limit int, state State) (page []listed, ok bool, err error) {
	match := func(e *entry) bool { return !e.gone && e.p.Seq < before && (state == "" || e.p.State == state) }
	// Under the mutex: one pass over the overlay keeping the limit+1
	// newest that match, and a copy of those only. A copy of each match
	// held it ~100 ms with 40,000 patches queued, for every list of the
	// queue or the newest patches, and every Submit waited.
	s.mu.Lock()
	gen := s.idx.dropGen.Load()
	newest := s.idx.first(limit+1, false, match)
	ov := make([]listed, 0, len(newest))
	for _, e := range newest {
		ov = append(ov, listed{e.patch().clone(), e.rest().diff})
	}
	s.mu.Unlock()
	slices.SortFunc(ov, func(a, b listed) int { return cmpSeq(b.p.Seq, a.p.Seq) })
	inPage := make(map[string]bool, len(ov))
	for _, l := range ov {
		inPage[l.p.ID] = true
	}

	bucket := bSeq
	if state != "" {
		bucket = bState(state)
	}
	type hit struct {
		id string
		de dbEntry
	}
	var hits []hit
	err = s.view(func(tx *bolt.Tx) error {
		b, ids := tx.Bucket(bucket), tx.Bucket(bIDs)
		if b == nil || ids == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Seek(seqKey(before))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(hits) <= limit; k, v = c.Prev() {
			seq := binary.BigEndian.Uint64(k)
			if e, in := s.inOverlay(v); in {
				// The overlay's entry wins; one that came in after the
				// overlay was copied is taken here.
				if e.p.Seq == seq && match(&e) && !inPage[e.p.ID] {
					ov = append(ov, listed{e.patch(), e.rest().diff})
					inPage[e.p.ID] = true
				}
				continue
			}
			de, found, err := getEntry(tx, string(v))
			if err != nil {
				return err
			}
			if found && de.seq == seq {
				hits = append(hits, hit{string(v), de})
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	ok = s.idx.dropGen.Load() == gen
	s.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	for _, h := range hits {
		if len(page) > limit && h.de.seq < page[limit].p.Seq {
			break
		}
		e, err := s.entryFromDB(h.id, h.de, false)
		if errors.Is(err, ErrClosed) {
			return nil, false, err
		}
		if err != nil {
			// One damaged record does not hide the rest of the list.
			s.log.Error("list patches: a patch's record cannot be read; leaving it out", "id", h.id, "err", err)
			continue
		}
		ov = append(ov, listed{e.patch(), e.rest().diff})
	}
	slices.SortFunc(ov, func(a, b listed) int { return cmpSeq(b.p.Seq, a.p.Seq) })
	return ov[:min(len(ov), limit+1)], true, nil
}

// finishedChunk is how many patches FinishedSince reads between calls
// of fn.
const finishedChunk = 512

// FinishedSince calls fn, in order of arrival, with each patch that
// finished (applied or failed) or was reverted at or after since, diff
// included, until fn returns an error, which it returns. It finds them in
// index.db's finished-at bucket and the overlay (the ids only), never
// holds the store's lock while reading index.db, a record or a diff, nor
// while fn runs, and holds at most a chunk of patches in memory: the
// summary repair after a start walks a long history with it while the
// store serves. A patch that changes meanwhile may be seen as it was or
// as it is. It fails if a diff cannot be read back (the store closed
// meanwhile, an I/O error); a patch whose record is damaged is logged and
// left out.
func (s *Store) FinishedSince(since time.Time, fn func(Patch) error) error {
	match := func(e *entry) bool {
		fin, rev := e.rest().FinishedAt, e.rest().RevertedAt
		return !fin.IsZero() && !fin.Before(since) || !rev.IsZero() && !rev.Before(since)
	}
	type cand struct {
		seq uint64
		id  string
	}
	var cands []cand
	seen := make(map[string]bool)
	s.mu.Lock()
	for _, e := range s.idx.all {
		if !e.gone && match(e) {
			cands = append(cands, cand{e.p.Seq, e.p.ID})
			seen[e.p.ID] = true
		}
	}
	s.mu.Unlock()
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bFin)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(finKey(max(0, nanos(since)), 0)); k != nil; k, v = c.Next() {
			if id := string(v); !seen[id] {
				seen[id] = true
				cands = append(cands, cand{binary.BigEndian.Uint64(k[8:]), id})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	seen = nil
	slices.SortFunc(cands, func(a, b cand) int { return cmpSeq(a.seq, b.seq) })
	for len(cands) > 0 {
		chunk := cands[:min(len(cands), finishedChunk)]
		cands = cands[len(chunk):]
		for _, c := range chunk {
			e, ok, err := s.find(c.id)
			if errors.Is(err, ErrClosed) {
				return err
			}
			if err != nil {
				s.log.Error("finished patches: a patch's record cannot be read; leaving it out", "id", c.id, "err", err)
				continue
			}
			if !ok || !match(&e) {
				continue
			}
			p, err := s.withDiff(e.patch(), e.rest().diff)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}
