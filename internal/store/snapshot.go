package store

import (
	"hash/maphash"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/cpu"
)

// lookupSnap is the lookup snapshot: one read transaction of index.db,
// begun after each write to it commits, that every lookup of an id in
// index.db (fromDB: each Submit of a new id) shares, its ids and
// tombstones buckets found once. A transaction per lookup cost ~4 µs
// under 64 clients: bbolt's Begin and Rollback each take db.metalock, one
// mutex for every transaction, and the stats lock, and add to and remove
// from db.txs.
//
// Sharing one read-only Tx between goroutines is safe for what a lookup
// does (bbolt v1.5.0, read in its source): Bucket.Get makes a Cursor of
// its own (Bucket.Cursor: a new stack; its one write to shared state is
// TxStats.IncCursorCount, an atomic.AddInt64) and seeks with it; the
// seek reads pages through Tx.page, which in a read-only Tx (no dirty
// pages, tx.pages nil) reads the mmap, db.data, unchanged while the Tx
// holds the mmap lock; and the buckets of a read-only Tx have no node or
// child-bucket caches (newBucket makes those maps only in a writable Tx;
// openBucket points into the mmap), so nothing else is written. Tx.Bucket
// is called only when the snapshot is begun, with every shard of mu held
// exclusively. go test -race runs lookups on it from many goroutines.
//
// A read transaction held open holds bbolt's mmap lock shared: a write
// that grows index.db past its mapping remaps under that lock exclusive
// and would wait for it forever, and so would DB.Close; and the pages a
// write frees are reused only once no read transaction older than it is
// open. So every write to index.db (writeIndex) retires the snapshot
// first and begins the next after its commit, and Close (and a failed
// Open) retires it for good before closing index.db: a snapshot lives
// from one write to the next (a checkpoint interval while patches come
// in) and never across a write, so it keeps no page a write freed from
// being reused, and no memory of its own. Entries a checkpoint wrote
// leave the overlay only after the next snapshot is begun (see read.go:
// dropGen).
//
// Lookups hold one of mu's shards shared while they use tx (the shard
// picked by a hash of the id, so that lookups on different cores rarely
// write to the same cache line, as one RWMutex's reader count, written
// by every lookup on every core, would); retiring takes every shard exclusively,
// so it waits for the lookups in flight (a Get or two each) and no lookup
// ever uses a transaction rolled back. While there is no snapshot (during
// a write, if beginning one failed, after Close) a lookup begins a
// transaction of its own.
type lookupSnap struct {
	mu    [snapShards]paddedRWMutex
	seed  maphash.Seed
	tx    *bolt.Tx     // nil: no snapshot
	ids   *bolt.Bucket // nil if index.db has no ids bucket
	tombs *bolt.Bucket // nil if index.db has no tombstones bucket
	done  bool         // retired for good: index.db is closed or closing
}

// snapShards is how many shards lookupSnap's lock has.
const snapShards = 16

// paddedRWMutex is a sync.RWMutex a cache line away from the next.
type paddedRWMutex struct {
	sync.RWMutex
	_ cpu.CacheLinePad
}

// lock takes every shard exclusively.
func (l *lookupSnap) lock() {
	for i := range l.mu {
		l.mu[i].Lock()
	}
}

func (l *lookupSnap) unlock() {
	for i := range l.mu {
		l.mu[i].Unlock()
	}
}

// begin begins a snapshot of db unless there is one or it was retired
// for good. Failing to begin one is not an error: lookups do without.
// Called by the only writer of index.db (s.ckMu held).
func (l *lookupSnap) begin(db *bolt.DB) {
	l.lock()
	defer l.unlock()
	if l.tx != nil || l.done {
		return
	}
	tx, err := db.Begin(false)
	if err != nil {
		return
	}
	l.tx, l.ids, l.tombs = tx, tx.Bucket(bIDs), tx.Bucket(bExpired)
}

// retire waits for the lookups using the snapshot, then rolls it back;
// final: no snapshot is begun again (index.db is about to close).
func (l *lookupSnap) retire(final bool) {
	l.lock()
	tx := l.tx
	l.tx, l.ids, l.tombs = nil, nil, nil
	l.done = l.done || final
	l.unlock()
	if tx != nil {
		// A read transaction's rollback only releases it.
		_ = tx.Rollback()
	}
}

// get looks id up in the snapshot as fromDB does (the tombstones too if
// withTombs and the ids bucket does not have it); shared is false if
// there is no snapshot, and the caller must look in a transaction of its
// own.
func (l *lookupSnap) get(id string, withTombs bool) (de dbEntry, ok bool, expiredAt int64, shared bool, err error) {
	mu := &l.mu[maphash.String(l.seed, id)%snapShards]
	mu.RLock()
	defer mu.RUnlock()
	if l.tx == nil {
		return dbEntry{}, false, 0, false, nil
	}
	de, ok, err = entryIn(l.ids, id)
	if err == nil && !ok && withTombs {
		expiredAt = tombIn(l.tombs, id)
	}
	return de, ok, expiredAt, true, err
}

// writeIndex runs write, which writes index.db, with the lookup snapshot
// retired, and begins the next one after it: of what write committed, or,
// if it failed (bbolt rolled it back), of index.db as it was. Open begins
// the first, so there is always one but during a write (and if beginning
// one failed). s.ckMu is held.
func (s *Store) writeIndex(write func() error) error {
	s.snap.retire(false)
	err := write()
	s.snap.begin(s.db)
	return err
}
