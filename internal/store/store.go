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

	// SegmentBytes is the size of a journal segment after which the
	// committer starts a new one; 0 means DefaultSegmentBytes.
	SegmentBytes int64

	// noLinger turns off the committer's wait for returning callers
	// (benchmarks compare with it).
	noLinger bool
	// wrapJournal lets tests inject failures into journal I/O.
	wrapJournal func(journalFile) journalFile
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
	wake     chan struct{} // closed and replaced when a patch becomes queued
	size     int64         // durable size of the active segment
	oldBytes int64         // size of the other segments together
	batches  uint64
	records  uint64
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

	attempt attempts   // BeginAttempt, EndAttempt
	pruneMu sync.Mutex // one Prune at a time

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
	}
	s.work = sync.NewCond(&s.mu)
	s.readers = segReaders{s: s, files: make(map[uint32]*os.File)}
	if s.opts.SegmentBytes <= 0 {
		s.opts.SegmentBytes = DefaultSegmentBytes
	}
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
	for i := 1; i < len(segs); i++ {
		if segs[i] != segs[i-1]+1 {
			return nil, fmt.Errorf("open %s: journal segment %s is missing (%s and %s are there): "+
				"the patches stored in it would be lost; restore it from a backup",
				filepath.Base(s.dir), s.segLabel(segs[i-1]+1), segName(segs[i-1]), segName(segs[i]))
		}
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

// load replays the journal's segments into a new index and makes the
// highest-numbered segment the active one: its torn tail cut, and a new
// segment started after it if it had damage in the middle.
func (s *Store) load() error {
	if err := s.migrateLegacy(); err != nil {
		return err
	}
	segs, err := s.segments()
	if err != nil {
		return err
	}
	idx := newIndex()
	for i, n := range segs {
		active := i == len(segs)-1
		f, size, err := s.openSegment(n, active)
		if err != nil {
			return err
		}
		res, err := s.replay(idx, n, f, size)
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
				s.jf.Close()
				return err
			}
		}
	}
	idx.markRecovery()
	s.idx = idx
	s.nextSeq = idx.expiredSeq // Seqs of expired patches are not given again
	for _, e := range idx.bySeq {
		s.nextSeq = max(s.nextSeq, e.p.Seq)
	}
	s.nextSeq++
	s.publishStatsLocked() // no committer yet: nothing else holds s
	return nil
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

// replay applies segment seg to the index. Decoding the records' JSON is
// most of the work of opening a store, so records are taken in batches
// whose metas are decoded on every core, then applied to the index in
// journal order.
func (s *Store) replay(idx *index, seg uint32, f *os.File, size int64) (scanResult, error) {
	name := s.segLabel(seg)
	var (
		batch    []scanned
		arena    []byte // the batch's metas; r.meta aliases the scan buffer
		applyErr error
	)
	flush := func() error {
		decodeAll(batch)
		for i := range batch {
			if err := s.apply(idx, &batch[i]); err != nil {
				return fmt.Errorf("replay %s at offset %d: %w", name, batch[i].at.off, err)
			}
		}
		batch, arena = batch[:0], arena[:0]
		return nil
	}
	res, err := scanJournal(f, size, name, s.log, func(r record, off int64) error {
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

// apply adds one decoded record to the index.
func (s *Store) apply(idx *index, b *scanned) error {
	r, at, p, blobs := b.r, b.at, b.p, b.blobs
	if b.err != nil {
		return fmt.Errorf("record of kind %d: %w", r.kind, b.err)
	}
	if err := checkBlobs(r, blobs); err != nil {
		return err
	}
	body := ref{at.seg, at.off + r.bodyAt}
	meta := ref{at.seg, at.off + metaOffset}
	switch r.kind {
	case kindPut:
		e, ok := idx.put(p, body, r.bodyLen)
		if !ok {
			s.log.Warn("journal repeats a patch; keeping the first", "segment", s.segLabel(at.seg), "id", p.ID, "offset", at.off)
			return nil
		}
		e.setDiff(meta, r.meta, b.diff)
	case kindRetry:
		e := idx.reattempt(p, body, r.bodyLen)
		e.setDiff(meta, r.meta, b.diff)
	case kindExpire:
		return applyExpireRecord(idx, r)
	case kindUpdate:
		e, _, ok := idx.update(p)
		if !ok {
			s.log.Warn("journal updates an unknown patch; ignoring it", "segment", s.segLabel(at.seg), "id", p.ID, "offset", at.off)
			return nil
		}
		e.setBlobs(body, blobs)
		e.setDiff(meta, r.meta, b.diff)
	default:
		return fmt.Errorf("unknown record kind %d (written by a newer patchd?)", r.kind)
	}
	return nil
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
	return s.read(probe.body, probe.bodyLen, "body of "+id)
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
		Failed: c[StateFailed], Reverted: c[StateReverted], Total: len(s.idx.patches),
		JournalBytes: s.oldBytes + s.size, Batches: s.batches, Records: s.records,
	})
}
