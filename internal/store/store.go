package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options configures a Store. The zero value is a durable store without an
// event log.
type Options struct {
	// Logger receives warnings about repaired journal damage and failed
	// event writes. nil discards them.
	Logger *slog.Logger
	// EventsPath is the JSON-lines event log; "" means none. Event
	// numbers are kept by the journal and index.db (doc.go), and
	// Subscribe replays from it and its rotated files what memory no
	// longer holds; without it, only the latest events in memory can be
	// replayed.
	EventsPath string
	// EventsMaxBytes rotates the event log once it holds this many bytes
	// (0: never): it is renamed after its last event's number and a new
	// one started (see doc.go, Events).
	EventsMaxBytes int64
	// EventsBackups is how many rotated event logs are kept, the newest
	// as it was written and the others gzip-compressed; older ones are
	// deleted. 0 keeps 5, as many as the log keeps.
	EventsBackups int
	// NoSync skips fsync of the journal. For tests and benchmarks only: it
	// breaks the promise that an acknowledged patch survives power loss.
	NoSync bool

	// SegmentBytes is the size of a journal segment after which the
	// committer starts a new one; 0 means DefaultSegmentBytes.
	SegmentBytes int64
	// CheckpointInterval is how often what changed is written to the
	// index checkpoint (index.db); 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration

	// noLinger turns off the committer's wait for returning callers
	// (benchmarks compare with it).
	noLinger bool
	// wrapJournal lets tests inject failures into journal I/O.
	wrapJournal func(journalFile) journalFile
	// mmapSize is index.db's initial mapping; 0 means 1 GiB (tests
	// make it small so that checkpoints remap).
	mmapSize int
	// ckFail, if set, is asked before each checkpoint write; an error
	// fails the write as a full disk would (tests).
	ckFail func() error
}

// Store is the durable patch store. It is safe for concurrent use.
type Store struct {
	dir    string
	name   string // the active segment in messages: "queue/seg/00000001.jnl"
	opts   Options
	log    *slog.Logger
	lockF  *os.File
	events *eventLog
	hub    *hub

	// fileMu guards jf, the active segment as the committer writes it.
	fileMu  sync.RWMutex
	jf      journalFile
	readers segReaders // bodies, blobs, diffs and metas are read here

	mu       sync.Mutex
	work     *sync.Cond // signalled when pending grows or closing is set
	closing  bool
	closed   chan struct{} // closed by Close; wakes Next
	pending  []*op         // records waiting for the committer
	inflight map[string]*op
	idx      *index
	// The index's position in the journal, for the checkpoint: the end of
	// the last record it took in (wm), where that record starts (wmLast)
	// and its CRC; the next Seq and the last event's number there.
	wm         ref
	wmLast     ref
	wmCRC      uint32
	idxNextSeq uint64
	idxEventID uint64
	firstSeg   uint32
	wake       chan struct{} // closed and replaced when a patch becomes queued
	size       int64         // durable size of the active segment
	oldBytes   int64         // size of the other segments together
	batches    uint64
	records    uint64
	gathers    uint64 // batches the committer waited for more records before (tests)
	// stats is what Stats answers: published under mu after each change
	// to the counts, read without it (/health must not wait for the lock).
	stats atomic.Pointer[Stats]

	// Owned by the committer goroutine after Open.
	seg     uint32 // the active segment
	tail    int64  // end of the last durable batch in it
	alloc   int64  // file size: from tail to here the file is zeros written ahead
	nextSeq uint64
	dirty   bool // bytes after tail may exist; truncate before writing
	buf     []byte
	eventID uint64  // the last event's number
	evs     []Event // the events of the batch being published

	attempt attempts     // BeginAttempt, EndAttempt
	pruneMu sync.Mutex   // one Prune at a time
	walked  atomic.Int64 // patches walk has handed out since Open (tests)

	// The checkpoint (checkpoint.go).
	db     *bolt.DB
	snap   lookupSnap // the read transaction new-id lookups share
	ckMu   sync.Mutex // one checkpoint (or other write of index.db) at a time
	ckLast ckMeta     // the record of the last checkpoint written
	// The last checkpoint's set and slices, cleared, for the next to
	// reuse (s.ckMu).
	ckSpare        map[string]*ckItem
	ckLastN        int // how many patches the last checkpoint took
	ckBuf, ckLeave []*ckItem
	// dbTombs: index.db may hold tombstones (bExpired), so a lookup of an
	// id it does not have looks there too. Set before a checkpoint writes
	// the first.
	dbTombs atomic.Bool
	ckKick  chan struct{}
	ckStop  chan struct{}
	ckDone  chan struct{}
	// expiredSinceDrop: a checkpoint removed expired patches from index.db
	// since segments were last dropped. Guarded by mu.
	expiredSinceDrop bool

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the committer exits
}

// Open opens the store in dir, creating it if needed, replays the journal,
// repairs a torn tail and starts the committer.
// Only one Store (in any process) can have dir open at a time.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		log:      log,
		closed:   make(chan struct{}),
		inflight: make(map[string]*op),
		wake:     make(chan struct{}),
		done:     make(chan struct{}),
		ckKick:   make(chan struct{}, 1),
		ckStop:   make(chan struct{}),
		ckDone:   make(chan struct{}),
	}
	s.work = sync.NewCond(&s.mu)
	s.snap.seed = maphash.MakeSeed()
	s.readers = segReaders{s: s, files: make(map[uint32]*os.File)}
	if s.opts.SegmentBytes <= 0 {
		s.opts.SegmentBytes = DefaultSegmentBytes
	}
	if s.opts.CheckpointInterval <= 0 {
		s.opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.eventID = s.idxEventID
	if opts.EventsPath != "" {
		ev, last, err := openEventLog(opts.EventsPath, opts.EventsMaxBytes, opts.EventsBackups, log)
		if err != nil {
			s.closeFiles()
			return nil, err
		}
		s.events = ev
		// A log numbered past the journal's count (events numbered by a
		// patchd that counted from its log) keeps its numbers going.
		if last > s.eventID {
			s.eventID, s.idxEventID = last, last
		}
	}
	var files *eventFiles
	if s.events != nil {
		files = s.events.files
	}
	s.hub = newHub(files, s.eventID)
	// Lookups share a snapshot from the first Submit on, not from the
	// first checkpoint: until then each would begin a read transaction
	// of its own (about 4 µs under load, for a second after every start).
	s.snap.begin(s.db)
	go s.commitLoop()
	go s.checkpointLoop()
	return s, nil
}

// closeFiles closes what a failed Open opened.
func (s *Store) closeFiles() {
	if s.jf != nil {
		s.jf.Close()
	}
	if s.db != nil {
		s.snap.retire(true)
		s.db.Close()
	}
	s.readers.close()
	s.lockF.Close()
}

// Close waits for queued records to be committed, then closes the files.
// Calls after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.closed)
		s.work.Broadcast()
		s.mu.Unlock()
		<-s.done
		close(s.ckStop)
		<-s.ckDone
		s.hub.close()
		var errs []error
		// The last checkpoint: the next Open replays nothing.
		if err := s.checkpoint(); err != nil {
			errs = append(errs, err)
		} else {
			s.maybeDropSegments()
		}
		// A read transaction held open would make Close wait forever.
		s.snap.retire(true)
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", indexName, err))
		}
		s.fileMu.Lock()
		if err := s.jf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.name, err))
		}
		s.jf = nil
		s.fileMu.Unlock()
		s.readers.close()
		if err := s.closeAttempt(); err != nil {
			errs = append(errs, err)
		}
		if s.events != nil {
			if err := s.events.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.lockF.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close lock: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Next blocks until there is a patch to work on and returns it: first any
// patch a crash left applying (in Seq order, State still "applying" so the
// worker knows to recover it), and any applying patch whose next Update
// failed to be written (the worker could not record its outcome: it gets
// the patch again to retry), then the queued patch with the lowest Seq.
// Next does not claim the patch: the worker moves it on with Update, or it
// gets the same patch again. It returns ErrClosed once the store closes.
func (s *Store) Next(ctx context.Context) (Patch, error) {
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return Patch{}, ErrClosed
		}
		if e := s.idx.next(); e != nil {
			p, d := e.patch().clone(), e.rest().diff
			s.mu.Unlock()
			return s.withDiff(p, d)
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-s.closed:
		case <-ctx.Done():
			return Patch{}, ctx.Err()
		}
	}
}

// Stats counts patches by state and reports the journal's size and how
// well commits are being grouped.
type Stats struct {
	Queued   int `json:"queued"`
	Applying int `json:"applying"`
	Applied  int `json:"applied"`
	Failed   int `json:"failed"`
	Reverted int `json:"reverted"`
	Total    int `json:"total"`
	// JournalBytes is the durable size of the journal, its segments
	// together.
	JournalBytes int64 `json:"journal_bytes"`
	// Batches and Records count the journal writes (one fsync each) and the
	// records they carried since Open; Records/Batches is the group-commit
	// batch size.
	Batches uint64 `json:"batches"`
	Records uint64 `json:"records"`
}

// Stats returns the counts as of the last committed batch. It never waits
// for the store's lock: it reads what the committer published.
func (s *Store) Stats() Stats {
	return *s.stats.Load()
}

// publishStatsLocked publishes the counts for Stats; s.mu is held.
func (s *Store) publishStatsLocked() {
	c := s.idx.counts
	s.stats.Store(&Stats{
		Queued: c[StateQueued], Applying: c[StateApplying], Applied: c[StateApplied],
		Failed: c[StateFailed], Reverted: c[StateReverted], Total: s.idx.total,
		JournalBytes: s.oldBytes + s.size, Batches: s.batches, Records: s.records,
	})
}
