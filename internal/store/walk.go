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
		live: journalBytes(e.bodyLen, e.rest().blobs, e.metaLen)}
	for _, f := range e.rest().Files {
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
	// Under the mutex: one pass over the overlay that keeps its n first
	// in order, and a copy of those. A copy of every entry in range and a
	// set of every id held it for 120 ms with 40,000 patches queued (the
	// prune a daemon runs under an ingest burst), and every Submit waited.
	s.mu.Lock()
	gen := s.idx.dropGen.Load()
	for _, e := range s.idx.first(n, asc, func(e *entry) bool { return !e.gone && in(e.p.Seq) }) {
		items = append(items, walkOf(e))
	}
	s.mu.Unlock()
	sortWalk(items, asc)
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
			if s.overlayHas(v) {
				continue // the overlay's entry is the patch's (taken above, or from there next time)
			}
			id := string(v)
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

// overlayHas says whether the overlay holds the patch (its entry there,
// gone or not, is the patch's, not index.db's).
func (s *Store) overlayHas(id []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.idx.patches[string(id)]
	return ok
}

// first returns the n first overlay entries that keep accepts, in Seq
// order (ascending, or with asc false descending), themselves in no
// order: one pass over all, which is mostly in Seq order (the order the
// entries came), taken from the end that comes first, so that most
// entries lose to the heap's root at once. The caller holds the mutex.
func (x *index) first(n int, asc bool, keep func(*entry) bool) []*entry {
	f := firstN{asc: asc, n: n}
	for i := range x.all {
		if !asc {
			i = len(x.all) - 1 - i
		}
		if e := x.all[i]; keep(e) {
			f.add(e)
		}
	}
	return f.entries()
}

// firstN keeps the n first entries added in Seq order (ascending, or with
// asc false descending): a heap whose root is the last of those kept. It
// keeps each Seq beside its entry, so that keeping one compares numbers
// and does not read entries (scattered in memory, a cache miss each).
type firstN struct {
	asc bool
	n   int
	h   []seqEntry
}

type seqEntry struct {
	seq uint64
	e   *entry
}

// after says whether a comes after b in the order kept.
func (f *firstN) after(a, b uint64) bool {
	if f.asc {
		return a > b
	}
	return a < b
}

func (f *firstN) add(e *entry) {
	seq := e.p.Seq
	if len(f.h) < f.n {
		f.h = append(f.h, seqEntry{seq, e})
		for i := len(f.h) - 1; i > 0; {
			up := (i - 1) / 2
			if !f.after(f.h[i].seq, f.h[up].seq) {
				break
			}
			f.h[i], f.h[up] = f.h[up], f.h[i]
			i = up
		}
		return
	}
	if f.n == 0 || !f.after(f.h[0].seq, seq) {
		return
	}
	f.h[0] = seqEntry{seq, e}
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(f.h) && f.after(f.h[l].seq, f.h[m].seq) {
			m = l
		}
		if r < len(f.h) && f.after(f.h[r].seq, f.h[m].seq) {
			m = r
		}
		if m == i {
			return
		}
		f.h[i], f.h[m] = f.h[m], f.h[i]
		i = m
	}
}

// entries are the entries kept, in no order.
func (f *firstN) entries() []*entry {
	out := make([]*entry, len(f.h))
	for i, se := range f.h {
		out[i] = se.e
	}
	return out
}

func sortWalk(items []walkItem, asc bool) {
	slices.SortFunc(items, func(a, b walkItem) int {
		if asc {
			return cmpSeq(a.p.Seq, b.p.Seq)
		}
		return cmpSeq(b.p.Seq, a.p.Seq)
	})
}
