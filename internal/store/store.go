package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Store. The zero value is a durable store without an
// event log.
type Options struct {
	// Logger receives warnings about repaired journal damage and failed
	// event writes. nil discards them.
	Logger *slog.Logger
	// EventsPath is the JSON-lines event log; "" means none. Event
	// numbers continue from its last line (or its newest rotated file's),
	// and Subscribe replays from it and its rotated files what memory no
	// longer holds; without it, numbering starts at 1 at
	// each Open and only the latest events in memory can be replayed.
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

	// compactMinBytes overrides the journal size below which Open never
	// compacts (tests).
	compactMinBytes int64
	// noLinger turns off the committer's wait for returning callers
	// (benchmarks compare with it).
	noLinger bool
	// wrapJournal lets tests inject failures into journal I/O.
	wrapJournal func(journalFile) journalFile
}

// defaultCompactMinBytes keeps small journals as they are: rewriting them
// gains nothing worth the time.
const defaultCompactMinBytes = 1 << 20

// Store is the durable patch store. It is safe for concurrent use.
type Store struct {
	dir    string
	name   string // short journal name for messages: "queue/journal"
	opts   Options
	log    *slog.Logger
	lockF  *os.File
	events *eventLog
	hub    *hub

	// fileMu keeps Close from closing the journal under a Body read.
	fileMu sync.RWMutex
	jf     journalFile

	mu       sync.Mutex
	work     *sync.Cond // signalled when pending grows or closing is set
	closing  bool
	closed   chan struct{} // closed by Close; wakes Next
	pending  []*op         // records waiting for the committer
	inflight map[string]*op
	idx      *index
	wake     chan struct{} // closed and replaced when a patch becomes queued
	size     int64         // durable journal size
	batches  uint64
	records  uint64
	// stats is what Stats answers: published under mu after each change
	// to the counts, read without it (/health must not wait for the lock).
	stats atomic.Pointer[Stats]

	// Owned by the committer goroutine after Open.
	tail    int64 // end of the last durable batch
	alloc   int64 // file size: from tail to here the file is zeros written ahead
	nextSeq uint64
	dirty   bool // bytes after tail may exist; truncate before writing
	buf     []byte
	eventID uint64  // the last event's number
	evs     []Event // the events of the batch being published

	attempt attempts   // BeginAttempt, EndAttempt
	pruneMu sync.Mutex // one Prune at a time

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the committer exits
}

// Open opens the store in dir, creating it if needed, replays the journal,
// repairs a torn tail, compacts if worthwhile and starts the committer.
// Only one Store (in any process) can have dir open at a time.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		dir:      dir,
		name:     filepath.Join(filepath.Base(dir), "journal"),
		opts:     opts,
		log:      log,
		closed:   make(chan struct{}),
		inflight: make(map[string]*op),
		wake:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.work = sync.NewCond(&s.mu)
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		s.lockF.Close()
		return nil, err
	}
	if opts.EventsPath != "" {
		ev, last, err := openEventLog(opts.EventsPath, opts.EventsMaxBytes, opts.EventsBackups, log)
		if err != nil {
			s.jf.Close()
			s.lockF.Close()
			return nil, err
		}
		s.events, s.eventID = ev, last
	}
	var files *eventFiles
	if s.events != nil {
		files = s.events.files
	}
	s.hub = newHub(files, s.eventID)
	go s.commitLoop()
	return s, nil
}

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
	// A compaction cut short by a crash left the old journal in place.
	if err := os.Remove(filepath.Join(s.dir, "journal.compact")); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return ioFailure("remove", s.name+".compact", err)
	}
	s.lockF = f
	return nil
}

// load replays the journal into a new index, compacting it first if that
// is due.
func (s *Store) load() error {
	for attempt := 0; ; attempt++ {
		f, size, err := openJournal(s.dir, s.name)
		if err != nil {
			return err
		}
		idx, res, err := s.replay(f, size)
		if err != nil {
			f.Close()
			return err
		}
		if res.end < size && !res.zeroTail {
			err := f.Truncate(res.end)
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				f.Close()
				return ioFailure("truncate", s.name, err)
			}
		}
		if attempt == 0 && s.shouldCompact(idx, res) {
			renamed, err := compactJournal(s.dir, s.name, idx.expireRecords(), idx.bySeq, f, res.damaged)
			if renamed {
				f.Close()
				if err != nil {
					return fmt.Errorf("compact %s: %w", s.name, err)
				}
				s.log.Info("journal compacted", "journal", s.name, "records", res.records,
					"patches", len(idx.patches), "bytes_before", res.end)
				continue
			}
			// The journal as it is stays valid; compaction can wait.
			s.log.Warn("journal compaction failed; keeping the journal as it is", "journal", s.name, "err", err)
		}
		idx.markRecovery()
		s.idx = idx
		s.tail, s.size, s.alloc = res.end, res.end, res.end
		if res.zeroTail {
			s.alloc = size
		}
		s.nextSeq = idx.expiredSeq // Seqs of expired patches are not given again
		for _, e := range idx.bySeq {
			s.nextSeq = max(s.nextSeq, e.p.Seq)
		}
		s.nextSeq++
		s.publishStatsLocked() // no committer yet: nothing else holds s
		s.jf = osJournal{f}
		if s.opts.wrapJournal != nil {
			s.jf = s.opts.wrapJournal(s.jf)
		}
		return nil
	}
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

// replay builds an index from the journal. Decoding the records' JSON is
// most of the work of opening a store, so records are taken in batches
// whose metas are decoded on every core, then applied to the index in
// journal order.
func (s *Store) replay(f *os.File, size int64) (*index, scanResult, error) {
	idx := newIndex()
	var (
		batch    []scanned
		arena    []byte // the batch's metas; r.meta aliases the scan buffer
		applyErr error
	)
	flush := func() error {
		decodeAll(batch)
		for i := range batch {
			if err := s.apply(idx, &batch[i]); err != nil {
				return fmt.Errorf("replay %s at offset %d: %w", s.name, batch[i].off, err)
			}
		}
		batch, arena = batch[:0], arena[:0]
		return nil
	}
	res, err := scanJournal(f, size, s.name, s.log, func(r record, off int64) error {
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
		batch = append(batch, scanned{r: r, off: off})
		return nil
	})
	if applyErr != nil {
		return idx, res, applyErr
	}
	if err != nil {
		return idx, res, err
	}
	if err := flush(); err != nil {
		return idx, res, err
	}
	return idx, res, nil
}

// replayArena is the size of a replay batch's metas together.
const replayArena = 4 << 20

// errStopScan ends a scan whose caller has its own error to report.
var errStopScan = errors.New("scan stopped")

// scanned is one record of a replay batch, and what decoding it gave.
type scanned struct {
	r     record
	off   int64
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

// apply adds one decoded record to the index.
func (s *Store) apply(idx *index, b *scanned) error {
	r, off, p, blobs := b.r, b.off, b.p, b.blobs
	if b.err != nil {
		return fmt.Errorf("record of kind %d: %w", r.kind, b.err)
	}
	if err := checkBlobs(r, blobs); err != nil {
		return err
	}
	live := int64(len(r.meta)) + r.bodyLen
	switch r.kind {
	case kindPut:
		e, ok := idx.put(p, off+r.bodyAt, r.bodyLen)
		if !ok {
			s.log.Warn("journal repeats a patch; keeping the first", "journal", s.name, "id", p.ID, "offset", off)
			return nil
		}
		e.setDiff(off+metaOffset, r.meta, b.diff)
		e.live = live
	case kindRetry:
		e := idx.reattempt(p, off+r.bodyAt, r.bodyLen)
		e.setDiff(off+metaOffset, r.meta, b.diff)
		e.live = live
	case kindExpire:
		return applyExpireRecord(idx, r)
	case kindUpdate:
		e, _, ok := idx.update(p)
		if !ok {
			s.log.Warn("journal updates an unknown patch; ignoring it", "journal", s.name, "id", p.ID, "offset", off)
			return nil
		}
		e.setBlobs(off+r.bodyAt, blobs)
		e.setDiff(off+metaOffset, r.meta, b.diff)
		e.live = int64(len(r.meta)) + e.bodyLen + blobsLen(e.blobs)
	default:
		return fmt.Errorf("unknown record kind %d (written by a newer patchd?)", r.kind)
	}
	return nil
}

func (s *Store) shouldCompact(idx *index, res scanResult) bool {
	if res.damaged {
		return true
	}
	minBytes := s.opts.compactMinBytes
	if minBytes == 0 {
		minBytes = defaultCompactMinBytes
	}
	if res.end < minBytes {
		return false
	}
	var live int64
	for _, e := range idx.bySeq {
		live += e.live + recHeaderLen + payloadFixed
	}
	superseded := res.records - len(idx.patches)
	return superseded > 4*len(idx.patches) || res.end > 2*live+int64(len(fileHeader))
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
		s.hub.close()
		var errs []error
		s.fileMu.Lock()
		if err := s.jf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.name, err))
		}
		s.jf = nil
		s.fileMu.Unlock()
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

// Get returns the patch with the given id.
func (s *Store) Get(id string) (Patch, bool) {
	s.mu.Lock()
	e, ok := s.idx.patches[id]
	if !ok {
		s.mu.Unlock()
		return Patch{}, false
	}
	p, d := e.p.clone(), e.diff
	s.mu.Unlock()
	return s.loaded(p, d), true
}

// Body returns the body the patch was submitted with, read from disk.
func (s *Store) Body(id string) ([]byte, error) {
	s.mu.Lock()
	e, ok := s.idx.patches[id]
	var probe entry
	if ok {
		probe = *e
	}
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("patch %s: %w", id, ErrNotFound)
	}
	s.fileMu.RLock()
	defer s.fileMu.RUnlock()
	if s.jf == nil {
		return nil, ErrClosed
	}
	return readBody(s.jf, s.name, &probe)
}

// readerAt is the journal file as the readers of bodies and blobs see it.
type readerAt interface {
	ReadAt([]byte, int64) (int, error)
}

func readBody(f readerAt, name string, e *entry) ([]byte, error) {
	b := make([]byte, e.bodyLen)
	if _, err := f.ReadAt(b, e.bodyOff); err != nil {
		return nil, fmt.Errorf("body of %s: %w", e.p.ID, ioFailure("read", name, err))
	}
	return b, nil
}

// DefaultListLimit is the page size List uses for a limit of 0 or less.
const DefaultListLimit = 50

// List returns patches newest first, only those in state unless state is
// "". cursor is "" for the first page or the next cursor a previous call
// returned; next is "" on the last page. A cursor List did not produce
// gives an empty page.
func (s *Store) List(cursor string, limit int, state State) (ps []Patch, next string) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	s.mu.Lock()
	page, next := s.idx.list(cursor, limit, state)
	s.mu.Unlock()
	ps = make([]Patch, len(page))
	for i, l := range page {
		ps[i] = s.loaded(l.p, l.diff)
	}
	return ps, next
}

// finishedChunk is how many patches FinishedSince looks at per hold of the
// store's lock.
const finishedChunk = 512

// FinishedSince calls fn, in order of arrival, with each patch that
// finished (applied or failed) or was reverted at or after since, diff
// included, until fn returns an error, which it returns. It never holds
// the store's lock for more than a few hundred patches, nor while fn runs
// or a diff is read, and never holds more than those few hundred in
// memory: the summary repair after a start walks a long history with it
// while the store serves. A patch that changes meanwhile may be seen as it
// was or as it is. It fails if a diff cannot be read back (the store
// closed meanwhile, an I/O error).
func (s *Store) FinishedSince(since time.Time, fn func(Patch) error) error {
	var (
		found []listed
		after uint64 // the Seq looked at last
	)
	for {
		found = found[:0]
		s.mu.Lock()
		x := s.idx.bySeq
		i := sort.Search(len(x), func(i int) bool { return x[i].p.Seq > after })
		end := min(i+finishedChunk, len(x))
		for _, e := range x[i:end] {
			if !e.p.FinishedAt.Before(since) || !e.p.RevertedAt.Before(since) {
				found = append(found, listed{e.p.clone(), e.diff})
			}
		}
		if end > i {
			after = x[end-1].p.Seq
		}
		s.mu.Unlock()
		for _, l := range found {
			p, err := s.withDiff(l.p, l.diff)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		if end == i {
			return nil
		}
		clear(found)
	}
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
			p, d := e.p.clone(), e.diff
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
	// JournalBytes is the durable size of the journal.
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
		Failed: c[StateFailed], Reverted: c[StateReverted], Total: len(s.idx.patches),
		JournalBytes: s.size, Batches: s.batches, Records: s.records,
	})
}
