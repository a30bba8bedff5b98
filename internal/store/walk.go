package store

import (
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// walkItem is a patch as Prune's selection sees it: no meta is read.
type walkItem struct {
	p    ExpiredPatch
	live int64 // about what its current state takes in the journal
	// files are the paths the patch changed.
	files []string
}

func walkOf(e *entry) walkItem {
	it := walkItem{p: ExpiredPatch{ID: e.p.ID, Seq: e.p.Seq, State: e.p.State, ReceivedAt: e.p.ReceivedAt},
		live: journalBytes(e.bodyLen, e.blobs, e.metaLen)}
	for _, f := range e.p.Files {
		it.files = append(it.files, f.Path)
	}
	return it
}

func walkOfDB(id string, d dbEntry) walkItem {
	return walkItem{p: ExpiredPatch{ID: id, Seq: d.seq, State: d.state, ReceivedAt: fromNanos(d.received)},
		live: journalBytes(d.bodyLen, d.blobs, d.metaLen), files: d.files}
}

// walk returns up to n patches in Seq order from seq from, excluded:
// newest first before it, or with asc oldest first after it. It reads
// index.db's seq bucket and the overlay, never a meta: Prune walks the
// whole history with it, a chunk at a time, off the store's mutex.
func (s *Store) walk(from uint64, asc bool, n int) ([]walkItem, error) {
	for {
		items, ok, err := s.walkOnce(from, asc, n)
		if err != nil || ok {
			s.walked.Add(int64(len(items)))
			return items, err
		}
	}
}

func (s *Store) walkOnce(from uint64, asc bool, n int) (items []walkItem, ok bool, err error) {
	in := func(seq uint64) bool { return asc && seq > from || !asc && seq < from }
	s.mu.Lock()
	gen := s.idx.dropGen.Load()
	taken := map[string]bool{}
	for id, e := range s.idx.patches {
		taken[id] = true
		if !e.gone && in(e.p.Seq) {
			items = append(items, walkOf(e))
		}
	}
	s.mu.Unlock()
	sortWalk(items, asc)
	items = items[:min(len(items), n)]
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSeq)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		next := c.Next
		if asc {
			k, v = c.Seek(seqKey(from + 1))
		} else {
			next = c.Prev
			if k, v = c.Seek(seqKey(from)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for got := 0; k != nil && got < n; k, v = next() {
			id := string(v)
			if taken[id] {
				continue
			}
			if _, inOv := s.inOverlay(v); inOv {
				continue // came into memory since: taken from there next time
			}
			d, found, err := getEntry(tx, id)
			if err != nil {
				return err
			}
			if found && d.seq == binary.BigEndian.Uint64(k) {
				items = append(items, walkOfDB(id, d))
				got++
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
	sortWalk(items, asc)
	return items[:min(len(items), n)], ok, nil
}

func sortWalk(items []walkItem, asc bool) {
	slices.SortFunc(items, func(a, b walkItem) int {
		if asc {
			return cmpSeq(a.p.Seq, b.p.Seq)
		}
		return cmpSeq(b.p.Seq, a.p.Seq)
	})
}
