package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
)

// op is one record on its way to the journal.
type op struct {
	kind   byte
	patch  Patch      // the record; for a put the committer sets Seq
	blobs  []diskBlob // inline blobs of an update, its body
	rec    []byte     // encoded record; sealed by the committer for a put
	bodyAt int        // offset of the body in rec
	prev   State      // state before an update, for the event log
	base   *entry     // the patch before an update or retry, as found
	event  string     // the event's name when not told by the state change
	expire *expireOp  // the patches of an expire record (prune.go)

	// Guarded by Store.mu.
	taken     bool // the committer has it; it can no longer be withdrawn
	cancelled bool // withdrawn before the committer took it

	done   chan struct{} // closed once the outcome is known
	err    error
	result Patch
}

// Submit durably records a new queued patch with its body. It returns once
// the record is fsynced. The caller's ID, Role, Target, Description and
// ReceivedAt (now if zero) are kept; Hash is the hex SHA-256 of body unless
// the caller set it; every other field starts empty.
//
// A repeated id with the same hash returns the stored patch and
// created=false. A repeated id with another hash returns an error wrapping
// ErrConflict, unless the stored patch failed: then the submission is a
// new attempt at it (created=true). The patch is queued again, behind
// every patch queued before (a new Seq), with the new body, hash, role,
// target, description and ReceivedAt, and nothing of the failed attempt's
// outcome; the failed attempt joins Attempts (see reattempt), and the
// event is patch.resubmitted. If ctx ends first, Submit returns its error; the record may
// still be committed if the committer had already taken it (the error says
// so), in which case a retry gets created=false.
func (s *Store) Submit(ctx context.Context, p Patch, body []byte) (rec Patch, created bool, err error) {
	if err := validID(p.ID); err != nil {
		return Patch{}, false, err
	}
	if p.Hash == "" {
		sum := sha256.Sum256(body)
		p.Hash = hex.EncodeToString(sum[:])
	}
	np := Patch{
		ID: p.ID, Hash: p.Hash, Role: p.Role, Target: p.Target,
		Description: p.Description, State: StateQueued, ReceivedAt: p.ReceivedAt,
	}
	if np.ReceivedAt.IsZero() {
		np.ReceivedAt = time.Now()
	}
	normalize(&np)
	meta, err := encodeMeta(np, nil)
	if err != nil {
		return Patch{}, false, fmt.Errorf("submit %s: encode: %w", p.ID, err)
	}
	if err := checkSize(meta, body); err != nil {
		return Patch{}, false, fmt.Errorf("submit %s: %w", p.ID, err)
	}
	o := &op{kind: kindPut, patch: np, done: make(chan struct{})}
	// Encoding here rather than in the committer spreads the copying and
	// JSON work over the callers; the committer only seals in the Seq.
	o.rec, o.bodyAt = encodeRecord(kindPut, 0, meta, body)

	forgot := false
	hint := s.prefind(np.ID)
	s.mu.Lock()
	for {
		if s.closing {
			s.mu.Unlock()
			return Patch{}, false, ErrClosed
		}
		if prior := s.inflight[np.ID]; prior != nil {
			// Another call for this id is being committed; its outcome
			// decides between created=false, conflict and trying again.
			if err := s.waitOther(ctx, prior); err != nil {
				return Patch{}, false, fmt.Errorf("submit %s: %w", np.ID, err)
			}
			continue
		}
		e, ok, expiredAt, err := s.findHintLocked(np.ID, hint)
		hint.gen = ^uint64(0) // once: after a wait, look again
		if err != nil {
			s.mu.Unlock()
			return Patch{}, false, fmt.Errorf("submit %s: %w", np.ID, err)
		}
		if s.closing || s.inflight[np.ID] != nil {
			continue // changed while index.db was read
		}
		if expiredAt != 0 {
			s.mu.Unlock()
			return Patch{}, false, fmt.Errorf("submit %s: %w", np.ID, &ExpiredError{ID: np.ID, At: fromNanos(expiredAt)})
		}
		if ok {
			cur, d := e.patch(), e.rest().diff
			if cur.Hash == np.Hash {
				s.mu.Unlock()
				return s.loaded(cur, d), false, nil
			}
			if cur.State != StateFailed {
				s.mu.Unlock()
				return Patch{}, false, fmt.Errorf("patch %s: %w", np.ID, ErrConflict)
			}
			if !forgot {
				// Deaths of the daemon counted against the failed body
				// are not the new one's; then look again.
				s.mu.Unlock()
				s.forgetAttempt(np.ID)
				forgot = true
				s.mu.Lock()
				continue
			}
			// A new attempt: the id stays reserved for it from here.
			if o, err = s.retryOp(cur, np, body); err != nil {
				s.mu.Unlock()
				return Patch{}, false, fmt.Errorf("submit %s: %w", np.ID, err)
			}
			base := e // a copy: e itself stays on the stack for every other Submit
			o.base = &base
		}
		break
	}
	s.enqueueLocked(o)
	s.mu.Unlock()
	res, err := s.await(ctx, o)
	if err != nil {
		return Patch{}, false, fmt.Errorf("submit %s: %w", np.ID, err)
	}
	return res, true, nil
}

// retryOp is the op of a new attempt at the failed patch cur: a record of
// kind kindRetry, the whole patch and its new body, whose Seq the
// committer sets as for a put.
func (s *Store) retryOp(cur, np Patch, body []byte) (*op, error) {
	next := reattempt(cur, np)
	normalize(&next)
	meta, err := encodeMeta(next, nil)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := checkSize(meta, body); err != nil {
		return nil, err
	}
	o := &op{kind: kindRetry, patch: next, prev: cur.State, event: "patch.resubmitted", done: make(chan struct{})}
	o.rec, o.bodyAt = encodeRecord(kindRetry, 0, meta, body)
	return o, nil
}

// Update durably changes a patch's record. fn gets a copy to modify; its
// error aborts the update. ID, Seq and Hash cannot change, and a state
// change must be one ValidTransition allows (else the error wraps
// ErrInvalidTransition). StartedAt, FinishedAt and RevertedAt are set to
// now on the matching state change unless fn set them.
//
// Updates of one patch are serialized: fn runs while no other Submit or
// Update of that id is in progress, and must not call the Store. ctx is
// handled as in Submit.
func (s *Store) Update(ctx context.Context, id string, fn func(*Patch) error) (Patch, error) {
	return s.update(ctx, id, nil, "", fn)
}

// Blob is content stored with a patch, such as a file's backup.
type Blob struct {
	Name string
	Data []byte
}

// UpdateBlobs is Update that also stores blobs in the same journal record,
// so that they are durable exactly when the update is, at the cost of no
// extra fsync; Blob reads them back. They replace the patch's earlier
// inline blobs, and an update to applying without any drops those (they
// belonged to an earlier attempt). Names must be distinct and non-empty.
// Meant for small content: the journal carries them as long as it keeps
// the patch.
func (s *Store) UpdateBlobs(ctx context.Context, id string, blobs []Blob, fn func(*Patch) error) (Patch, error) {
	for i, b := range blobs {
		if b.Name == "" {
			return Patch{}, fmt.Errorf("update %s: blob %d has no name", id, i)
		}
		for _, c := range blobs[:i] {
			if c.Name == b.Name {
				return Patch{}, fmt.Errorf("update %s: two blobs named %q", id, b.Name)
			}
		}
	}
	return s.update(ctx, id, blobs, "", fn)
}

// update is Update with blobs, and event naming the change in the event
// log instead of its state change ("" for that).
func (s *Store) update(ctx context.Context, id string, blobs []Blob, event string, fn func(*Patch) error) (Patch, error) {
	s.mu.Lock()
	var (
		e   entry
		ok  bool
		err error
	)
	for {
		if s.closing {
			s.mu.Unlock()
			return Patch{}, ErrClosed
		}
		if prior := s.inflight[id]; prior != nil {
			if err := s.waitOther(ctx, prior); err != nil {
				return Patch{}, fmt.Errorf("update %s: %w", id, err)
			}
			continue
		}
		if e, ok, _, err = s.findLocked(id); err != nil {
			s.mu.Unlock()
			return Patch{}, fmt.Errorf("update %s: %w", id, err)
		}
		if s.closing || s.inflight[id] != nil {
			continue // changed while index.db was read
		}
		break
	}
	if !ok {
		s.mu.Unlock()
		return Patch{}, fmt.Errorf("patch %s: %w", id, ErrNotFound)
	}
	cur, d := e.patch(), e.rest().diff
	o := &op{kind: kindUpdate, patch: Patch{ID: id}, prev: cur.State, event: event, base: &e, done: make(chan struct{})}
	// Reserve the id so that fn sees the latest record and no other
	// change slips in between.
	s.inflight[id] = o
	s.mu.Unlock()
	// The new record is written whole, the diff included.
	cur, err = s.withDiff(cur, d)
	if err != nil {
		s.mu.Lock()
		s.releaseLocked(o, err)
		s.mu.Unlock()
		return Patch{}, fmt.Errorf("update %s: %w", id, err)
	}

	next := cur.clone()
	err = s.callUpdateFn(o, fn, &next)
	if err == nil {
		err = checkUpdate(cur, &next, time.Now())
	}
	var (
		meta, body []byte
		dblobs     []diskBlob
	)
	if err == nil && len(blobs) > 0 {
		n := 0
		for _, b := range blobs {
			dblobs = append(dblobs, diskBlob{Name: b.Name, Len: int64(len(b.Data))})
			n += len(b.Data)
		}
		body = make([]byte, 0, n)
		for _, b := range blobs {
			body = append(body, b.Data...)
		}
	}
	if err == nil {
		meta, err = encodeMeta(next, dblobs)
	}
	if err == nil {
		err = checkSize(meta, body)
	}
	s.mu.Lock()
	if err == nil && s.closing {
		err = ErrClosed
	}
	if err != nil {
		s.releaseLocked(o, err)
		s.mu.Unlock()
		return Patch{}, err
	}
	o.patch, o.blobs = next, dblobs
	o.rec, o.bodyAt = encodeRecord(kindUpdate, next.Seq, meta, body)
	s.pending = append(s.pending, o)
	s.work.Signal()
	s.mu.Unlock()
	res, err := s.await(ctx, o)
	if err != nil {
		return Patch{}, fmt.Errorf("update %s: %w", id, err)
	}
	return res, nil
}

// callUpdateFn runs fn; if fn panics, it frees the id that o reserved
// before the panic goes on, so that the patch does not stay locked.
func (s *Store) callUpdateFn(o *op, fn func(*Patch) error, p *Patch) error {
	defer func() {
		if r := recover(); r != nil {
			s.mu.Lock()
			s.releaseLocked(o, fmt.Errorf("update %s: panic in update function: %v", o.patch.ID, r))
			s.mu.Unlock()
			panic(r)
		}
	}()
	return fn(p)
}

// enqueueLocked hands o to the committer and reserves its id.
func (s *Store) enqueueLocked(o *op) {
	s.inflight[o.patch.ID] = o
	s.pending = append(s.pending, o)
	s.work.Signal()
}

// releaseLocked ends an op that will not be written.
func (s *Store) releaseLocked(o *op, err error) {
	if s.inflight[o.patch.ID] == o {
		delete(s.inflight, o.patch.ID)
	}
	if o.expire != nil {
		s.releaseExpireLocked(o)
	}
	o.err = err
	close(o.done)
}

// waitOther waits for another op on the same id to finish. s.mu is held on
// entry; it is held again on a nil return and released on an error.
func (s *Store) waitOther(ctx context.Context, prior *op) error {
	s.mu.Unlock()
	select {
	case <-prior.done:
		s.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// await waits for the outcome of o. If ctx ends first, o is withdrawn if
// the committer has not taken it yet.
func (s *Store) await(ctx context.Context, o *op) (Patch, error) {
	select {
	case <-o.done:
		return o.result, o.err
	case <-ctx.Done():
	}
	s.mu.Lock()
	if !o.taken && !o.cancelled {
		o.cancelled = true
		s.releaseLocked(o, ctx.Err())
		s.mu.Unlock()
		return Patch{}, fmt.Errorf("%w (not recorded)", ctx.Err())
	}
	s.mu.Unlock()
	select {
	case <-o.done:
		return o.result, o.err
	default:
		return Patch{}, fmt.Errorf("%w (being written; it may still be recorded)", ctx.Err())
	}
}

// commitLoop is the committer: it writes whatever is pending as one batch
// with one fsync, until Close and the queue is empty.
//
// Under steady load, callers released by one batch come back with their
// next record a moment after the committer has already started the next
// fsync, so batches would alternate between two halves of the callers.
// To let them join, the committer lingers briefly before a batch when the
// previous one ended just now and fewer records are pending than were
// outstanding then. The linger is a quarter of the last write+fsync, at
// most maxLinger, and ends as soon as the records are there; on a fast
// disk it is a few microseconds and on an idle store it does not happen.
//
// On a fast disk under many clients that is not enough: the fsync ends
// before most callers have their next record ready, and batches collapse
// to one or two records, each paying a write, an fsync, an event-log
// write and the wakeups of a batch of its own (with wrk at 64 clients on
// a 2-core machine: median batch 1 record). So the committer also gathers
// (gatherer): it keeps how many records were outstanding at once lately,
// and waits, at most gatherWait, for half that many to be pending. A lone
// client never has more than its own record outstanding, so it is never
// made to wait. Measured by the ingest benchmark, 24 rounds taking turns
// with the build before: at 64 clients 24 records a commit instead of 12,
// CPU per request 0.93, p99 0.92, req/s 1.08 of that build's.
func (s *Store) commitLoop() {
	defer close(s.done)
	var (
		batch       []*op
		outstanding int           // records in or waiting for the last batch
		lastEnd     time.Time     // when the last batch was released
		lastDur     time.Duration // its write+fsync time
		gather      gatherer
	)
	for {
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closing {
			s.work.Wait()
		}
		if want := gather.want(time.Now()); len(s.pending) < want && !s.opts.noLinger && !s.closing {
			s.gathers++
			s.lingerLocked(gatherWait, want)
		} else if linger := min(lastDur/4, maxLinger); linger > 0 && !s.opts.noLinger && !s.closing &&
			len(s.pending) < outstanding && time.Since(lastEnd) < linger {
			s.lingerLocked(linger, outstanding)
		}
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return
		}
		batch = batch[:0]
		for _, o := range s.pending {
			if !o.cancelled {
				o.taken = true
				batch = append(batch, o)
			}
		}
		clear(s.pending)
		s.pending = s.pending[:0]
		s.mu.Unlock()
		outstanding, lastDur = 0, 0
		if len(batch) > 0 {
			start := time.Now()
			if n, ok := s.commit(batch); ok {
				outstanding = n
				lastEnd = time.Now()
				lastDur = lastEnd.Sub(start)
				gather.released(n, lastEnd)
			}
		}
		clear(batch)
	}
}

// maxLinger bounds the wait for more records before a batch.
const maxLinger = 2 * time.Millisecond

// gatherer is the committer's estimate of how many records come at once:
// the most outstanding at a release (the batch and those that arrived
// while it was written), decaying by an eighth a batch, and forgotten
// after gatherIdle without a batch.
type gatherer struct {
	callers float64
	last    time.Time // the last release
}

const (
	gatherWait = time.Millisecond      // the longest wait for records expected
	gatherIdle = 10 * time.Millisecond // no batch for this long: forget the estimate
	minGather  = 4                     // worth waiting for: fewer are written at once
	maxGather  = 256
)

// released notes a batch released at now with n records outstanding.
func (g *gatherer) released(n int, now time.Time) {
	g.callers = max(float64(n), g.callers*7/8)
	g.last = now
}

// want is how many records to wait for before a batch starting at now: half
// the estimate, or 0 when that is under minGather.
func (g *gatherer) want(now time.Time) int {
	if now.Sub(g.last) > gatherIdle {
		g.callers = 0
	}
	if w := int(min(g.callers/2, maxGather)); w >= minGather {
		return w
	}
	return 0
}

// lingerLocked waits, with s.mu held, up to d for want records to be
// pending (or for Close).
func (s *Store) lingerLocked(d time.Duration, want int) {
	expired := false
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		expired = true
		s.work.Broadcast()
		s.mu.Unlock()
	})
	for len(s.pending) < want && !expired && !s.closing {
		s.work.Wait()
	}
	t.Stop()
}

// commit writes one batch durably and publishes it, or fails all of it.
// It reports whether it succeeded and how many records were outstanding
// (this batch and those already waiting for the next) when it released
// its callers.
func (s *Store) commit(batch []*op) (outstanding int, ok bool) {
	firstSeq := s.nextSeq
	buf := s.buf[:0]
	bodyOff := make([]int64, len(batch))
	for i, o := range batch {
		if o.kind == kindPut || o.kind == kindRetry {
			o.patch.Seq = s.nextSeq
			s.nextSeq++
			sealRecord(o.rec, o.patch.Seq)
		}
		bodyOff[i] = s.tail + int64(len(buf)+o.bodyAt)
		buf = append(buf, o.rec...)
	}
	seg := s.seg
	// Do not keep a huge buffer alive because of one large body.
	if cap(buf) <= 4<<20 {
		s.buf = buf
	}
	if err := s.writeDurably(buf); err != nil {
		s.nextSeq = firstSeq
		s.mu.Lock()
		for _, o := range batch {
			if o.kind == kindUpdate {
				// An applying patch this update was to move on stays
				// applying: Next hands it out again, so that the worker
				// can record how it ended once the disk recovers.
				s.idx.retry(o.patch.ID)
			}
			s.releaseLocked(o, err)
		}
		s.mu.Unlock()
		return 0, false
	}
	s.tail += int64(len(buf))

	s.mu.Lock()
	became := false
	for i, o := range batch {
		if o.kind == kindExpire {
			s.applyExpireLocked(o)
			continue
		}
		var e *entry
		body := ref{seg, bodyOff[i]}
		bodyLen := int64(len(o.rec) - o.bodyAt)
		switch o.kind {
		case kindPut:
			// Submit found the id neither here nor in index.db, and held
			// it reserved since: index.db cannot have it.
			e = s.idx.put(o.patch, body, bodyLen)
			e.fresh = true
			became = true
		case kindRetry:
			e = s.idx.reattempt(o.patch, body, bodyLen, o.base)
			became = true
		case kindUpdate:
			e, _ = s.idx.update(o.patch, o.base)
			e.setBlobs(body, o.blobs)
			became = became || (o.patch.State == StateQueued && o.prev != StateQueued)
		}
		if o.event != "" || eventName(o.prev, o.patch.State) != "" {
			s.idxEventID++
		}
		// The record starts o.bodyAt before its body.
		recAt := bodyOff[i] - int64(o.bodyAt)
		e.meta, e.metaLen = ref{seg, recAt + metaOffset}, int64(o.bodyAt-metaOffset)
		e.metaCRC = crc32.Checksum(o.rec[metaOffset:o.bodyAt], castagnoli())
		e.setDiff(e.meta, o.rec[metaOffset:o.bodyAt], span{})
		s.wm, s.wmLast = ref{seg, recAt + int64(len(o.rec))}, ref{seg, recAt}
		s.wmCRC = binary.LittleEndian.Uint32(o.rec[8:])
		// The caller gets the whole record, diff included.
		o.result = o.patch.clone()
		o.rec = nil
		delete(s.inflight, o.patch.ID)
	}
	s.size = s.tail
	s.idxNextSeq = s.nextSeq
	s.idx.snapAll()
	s.kickCheckpointLocked()
	s.batches++
	s.records += uint64(len(batch))
	s.publishStatsLocked()
	if became {
		close(s.wake)
		s.wake = make(chan struct{})
	}
	outstanding = len(batch) + len(s.pending)
	s.mu.Unlock()
	// The events are numbered and published before the submitters are
	// answered, so that once Submit or Update returns, LastEventID counts
	// its event (a write of the event log, no sync: a few µs a batch).
	s.publish(batch)
	for _, o := range batch {
		close(o.done)
	}
	if s.tail >= s.opts.SegmentBytes {
		if err := s.rollSegment("segment full"); err != nil {
			s.log.Warn("could not start a new journal segment; writing on in the current one",
				"segment", s.name, "err", err)
		}
	}
	return outstanding, true
}

// publish numbers the events of a committed batch, appends them to the
// event log and hands them to the subscribers, none of which it waits for.
func (s *Store) publish(batch []*op) {
	s.evs = batchEvents(s.evs[:0], batch, s.eventID, time.Now())
	if len(s.evs) == 0 {
		return
	}
	s.eventID = s.evs[len(s.evs)-1].EventID
	if s.events != nil {
		s.events.append(s.evs)
	}
	s.hub.publish(s.evs)
	clear(s.evs)
	if cap(s.evs) > 4096 {
		s.evs = nil
	}
}

// writeDurably appends buf at the durable tail and fsyncs. On failure it
// cuts the file back to the tail so that no part of the batch can be
// replayed later.
func (s *Store) writeDurably(buf []byte) error {
	if s.dirty {
		if err := s.cutBack(); err != nil {
			return err
		}
	}
	end := s.tail + int64(len(buf))
	alloc := s.alloc
	if end > alloc {
		// Zeros ahead of the records, so that the next batches overwrite
		// allocated space inside the file's size and need only fdatasync,
		// not the metadata commit an append makes every fsync pay. Not
		// when that would take the last of the disk from everything else
		// (the state file, a start after a crash): then the records alone.
		alloc = (end/preallocChunk + 1) * preallocChunk
		if free, err := fsutil.FreeBytes(s.dir); err == nil && free < uint64(alloc-end)+2*preallocChunk {
			alloc = end
		} else if err := writeZeros(s.jf, end, alloc); err != nil {
			// No room to write ahead (a nearly full disk): write just
			// the records, as long as they fit.
			if err := s.jf.Truncate(s.tail); err != nil {
				s.recoverFrom(err)
				return ioFailure("truncate", s.name, err)
			}
			s.alloc, alloc = s.tail, end
		}
	}
	if _, err := s.jf.WriteAt(buf, s.tail); err != nil {
		s.recoverFrom(err)
		return ioFailure("write", s.name, err)
	}
	if !s.opts.NoSync {
		sync := s.jf.Datasync
		if alloc != s.alloc {
			sync = s.jf.Sync // the file grew
		}
		if err := sync(); err != nil {
			s.recoverFrom(err)
			return ioFailure("sync", s.name, err)
		}
	}
	s.alloc = alloc
	return nil
}

// preallocChunk is how far ahead of the records the journal is zeroed.
const preallocChunk = 1 << 20

// writeZeros writes zero bytes from from to to.
func writeZeros(f io.WriterAt, from, to int64) error {
	zeros := make([]byte, min(64<<10, to-from))
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (s *Store) recoverFrom(cause error) {
	if err := s.cutBack(); err != nil {
		s.log.Error("journal write failed and could not be undone; writes stop until it can",
			"journal", s.name, "write_err", cause, "err", err)
	}
}

// cutBack truncates the journal to the durable tail and fsyncs that.
func (s *Store) cutBack() error {
	s.dirty = true
	s.alloc = s.tail // whatever was written ahead goes too
	if err := s.jf.Truncate(s.tail); err != nil {
		return ioFailure("truncate", s.name, err)
	}
	if !s.opts.NoSync {
		if err := s.jf.Sync(); err != nil {
			return ioFailure("sync", s.name, err)
		}
	}
	s.dirty = false
	return nil
}
