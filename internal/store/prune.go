package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention: Prune expires old patches (see doc.go, Retention).

// ErrExpired means the patch existed but retention removed it: its record,
// body, blobs and diff are gone, only the time it expired is kept. Errors
// that wrap it are *ExpiredError, which says when.
var ErrExpired error = &sentinel{"patch expired", CodeExpired}

// ExpiredError is the refusal of a patch retention removed.
type ExpiredError struct {
	ID string
	At time.Time // when it expired
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("patch %q expired at %s (removed by retention, --retain)", e.ID, e.At.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrExpired) hold.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// Code returns CodeExpired.
func (e *ExpiredError) Code() string { return CodeExpired }

// PrunePolicy says which patches Prune expires. A patch expires when it is
// older than MaxAge or not among the newest MaxCount, unless it is kept
// (see Prune). With neither limit set, nothing expires.
type PrunePolicy struct {
	// MaxAge expires patches received more than MaxAge before Now; 0 sets
	// no age limit.
	MaxAge time.Duration
	// MaxCount expires the patches beyond the newest MaxCount (by Seq);
	// 0 sets no count limit.
	MaxCount int
	// Now is the time ages are measured from; zero means time.Now().
	Now time.Time
}

// PruneResult is what Prune expired (or, in a dry run, would expire).
type PruneResult struct {
	// Expired are the patches expired, oldest first.
	Expired []ExpiredPatch
	// Kept is how many patches the store holds after the prune, and
	// OldestKept when the oldest of them was received (zero if none).
	Kept       int
	OldestKept time.Time
	// Protected counts the patches the policy would expire but Prune kept:
	// queued or applying, or needed to revert a file (see Prune).
	Protected int
	// JournalBytes is about what the expired patches' current records
	// take in the journal. It is freed when every patch stored in their
	// segments has expired: the segment is then removed (see doc.go,
	// Retention); a segment that still holds one kept patch stays.
	JournalBytes int64
	// BlobBytes is the size of the expired patches' blob files, removed.
	BlobBytes int64
}

// ExpiredPatch is one patch Prune expired.
type ExpiredPatch struct {
	ID         string
	Seq        uint64
	State      State // the state it had
	ReceivedAt time.Time
}

// pruneChunk bounds the patches Prune looks at under the store's mutex at
// once; expireBatch bounds the patches one expire record carries, and so
// the work of checking and applying it under the mutex.
const (
	pruneChunk  = 4096
	expireBatch = 1024
)

// candidate is a patch selection found expired and not kept, with what
// made that so, checked again before its record is written.
type candidate struct {
	ExpiredPatch
	live   int64
	guards []guard // for each of its files, the newer applied patch that holds it
}

// guard is the newest applied patch of a file: while it is applied, older
// patches of the file are not needed to revert it.
type guard struct {
	id  string
	seq uint64
}

// Prune expires the patches the policy selects, oldest first: each chunk
// of them is one journal record (kind 4, expire), durable before Prune
// goes on, after which the patches are gone from the index (Get, List,
// Body, Blob) and their blob directories are removed; Expired then tells
// when each expired, also after a restart. A dry run selects the same
// patches and changes nothing.
//
// Prune never expires a patch that is queued or applying, nor one needed
// to revert a file to where it was: for each file a patch changed, the
// newest patch that changed it, and when that one was reverted or failed,
// every older one back to the newest still applied (which a revert of the
// file needs next). This is decided when Prune looks at the patches; a
// patch that changes state meanwhile is looked at again before its record
// is written, and kept if anything it was judged on changed.
//
// Prune holds the store's mutex for a chunk of patches at a time, never
// for the whole history. One Prune runs at a time.
func (s *Store) Prune(ctx context.Context, pol PrunePolicy, dryRun bool) (PruneResult, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if pol.Now.IsZero() {
		pol.Now = time.Now()
	}
	if res, due, err := s.due(pol); err != nil || !due {
		if err == nil && !dryRun {
			res.BlobBytes = s.sweepBlobs()
		}
		return res, err
	}
	cands, res, err := s.selectExpired(ctx, pol)
	if err != nil {
		return PruneResult{}, err
	}
	if dryRun {
		for _, c := range cands {
			res.Expired = append(res.Expired, c.ExpiredPatch)
			res.JournalBytes += c.live
			res.BlobBytes += s.blobBytes(c.ID)
		}
		res.Kept -= len(cands)
		return res, nil
	}
	res.BlobBytes += s.sweepBlobs()
	kept := res.Kept
	for len(cands) > 0 {
		n := min(len(cands), expireBatch)
		chunk := cands[:n]
		cands = cands[n:]
		done, err := s.expireChunk(ctx, chunk, pol.Now)
		if err != nil {
			res.Kept = kept - len(res.Expired)
			return res, err
		}
		for _, c := range done {
			res.Expired = append(res.Expired, c.ExpiredPatch)
			res.JournalBytes += c.live
			res.BlobBytes += s.removeBlobs(c.ID)
		}
		res.Protected += len(chunk) - len(done)
	}
	s.mu.Lock()
	res.Kept = s.idx.total
	s.mu.Unlock()
	res.OldestKept = time.Time{}
	if res.Kept > 0 {
		if res.OldestKept, err = s.oldest(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// due reports whether the policy can expire anything, reading one chunk
// of the oldest patches and the count the index keeps: the hourly prune
// of a store whose oldest patch is within the age and whose count is
// within the limit then costs nothing in proportion to the history,
// where the selection walks all of it (to find which patches a revert of
// a file still needs). When nothing is due, res has Kept and OldestKept.
func (s *Store) due(pol PrunePolicy) (res PruneResult, due bool, err error) {
	s.mu.Lock()
	res.Kept = s.idx.total
	s.mu.Unlock()
	if res.Kept == 0 {
		return res, false, nil
	}
	if pol.MaxCount > 0 && res.Kept > pol.MaxCount {
		return res, true, nil
	}
	// A few of the oldest are enough to judge by: seq order is arrival
	// order, and each index lookup touches a page of index.db, which
	// stays resident in the daemon's memory (a whole chunk touched 25 MiB
	// of a 200,000-patch index at every start). A patch older than these
	// (a clock stepped back) is only expired later, never early.
	if res.OldestKept, err = s.oldestOf(dueSample); err != nil {
		return res, false, err
	}
	return res, pol.MaxAge > 0 && res.OldestKept.Before(pol.Now.Add(-pol.MaxAge)), nil
}

// oldest is the earliest ReceivedAt of the patches held. Seq order is
// arrival order but for patches sent again, so it looks at the first
// chunk and takes the least.
func (s *Store) oldest() (time.Time, error) { return s.oldestOf(pruneChunk) }

// dueSample is how many of the oldest patches due reads.
const dueSample = 32

// oldestOf is the earliest ReceivedAt of the n first patches in seq order.
func (s *Store) oldestOf(n int) (time.Time, error) {
	items, err := s.walk(0, true, n)
	var t time.Time
	for _, it := range items {
		if t.IsZero() || it.p.ReceivedAt.Before(t) {
			t = it.p.ReceivedAt
		}
	}
	return t, err
}

// selectExpired walks the patches newest first, a chunk at a time, and
// returns those the policy expires and nothing keeps, oldest first. res
// has Kept (before expiring), OldestKept and Protected filled in.
func (s *Store) selectExpired(ctx context.Context, pol PrunePolicy) ([]candidate, PruneResult, error) {
	var (
		res     PruneResult
		cands   []candidate
		guards  = map[string]guard{} // file → its newest applied patch seen so far
		touched = map[string]bool{}  // files a newer patch changed
		cursor  = uint64(math.MaxUint64)
		rank    int
		cutoff  time.Time
	)
	if pol.MaxAge > 0 {
		cutoff = pol.Now.Add(-pol.MaxAge)
	}
	type seen = walkItem
	var batch []seen
	for {
		if err := ctx.Err(); err != nil {
			return nil, PruneResult{}, err
		}
		items, err := s.walk(cursor, false, pruneChunk)
		if err != nil {
			return nil, PruneResult{}, err
		}
		batch = batch[:0]
		for _, it := range items {
			batch = append(batch, seen(it))
		}
		if len(batch) == 0 {
			break
		}
		cursor = batch[len(batch)-1].p.Seq
		for _, sn := range batch {
			expired := (!cutoff.IsZero() && sn.p.ReceivedAt.Before(cutoff)) ||
				(pol.MaxCount > 0 && rank >= pol.MaxCount)
			rank++
			keep := sn.p.State == StateQueued || sn.p.State == StateApplying
			var gs []guard
			for _, f := range sn.files {
				g, ok := guards[f]
				if !ok {
					// No newer patch of the file is applied: this one is
					// the file's newest, or a revert may come back to it.
					keep = true
				}
				gs = append(gs, g)
			}
			for _, f := range sn.files {
				touched[f] = true
				if _, ok := guards[f]; !ok && sn.p.State == StateApplied {
					guards[f] = guard{id: sn.p.ID, seq: sn.p.Seq}
				}
			}
			switch {
			case expired && keep:
				res.Protected++
				fallthrough
			case !expired:
				res.Kept++
				if res.OldestKept.IsZero() || sn.p.ReceivedAt.Before(res.OldestKept) {
					res.OldestKept = sn.p.ReceivedAt
				}
			default:
				res.Kept++ // until expired
				cands = append(cands, candidate{ExpiredPatch: sn.p, live: sn.live, guards: gs})
			}
		}
	}
	slices.Reverse(cands)
	return cands, res, nil
}

// expireChunk checks the candidates again under the mutex and writes one
// expire record for those that still qualify. It returns them.
func (s *Store) expireChunk(ctx context.Context, chunk []candidate, now time.Time) ([]candidate, error) {
	var ids0 []string
	for _, c := range chunk {
		ids0 = append(ids0, c.ID)
		for _, g := range c.guards {
			ids0 = append(ids0, g.id)
		}
	}
	var known map[string]seqState
	for {
		s.mu.Lock()
		gen := s.idx.dropGen.Load()
		s.mu.Unlock()
		var err error
		if known, err = s.dbStates(ids0); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		s.mu.Lock()
		if s.idx.dropGen.Load() == gen {
			break // what index.db said is what holds for ids not in memory
		}
		s.mu.Unlock()
	}
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	var (
		done   []candidate
		ids    []string
		maxSeq uint64
	)
	for _, c := range chunk {
		if !s.stillExpiredLocked(c, known) {
			continue
		}
		done = append(done, c)
		ids = append(ids, c.ID)
		maxSeq = max(maxSeq, c.Seq)
	}
	if len(done) == 0 {
		s.mu.Unlock()
		return nil, nil
	}
	// The ids are reserved (as an Update reserves its id) while the
	// record is encoded outside the mutex: nothing changes them meanwhile.
	at := nanos(normTime(now))
	o := &op{kind: kindExpire, expire: &expireOp{at: at}, done: make(chan struct{})}
	for _, c := range done {
		o.expire.ps = append(o.expire.ps, c.ExpiredPatch)
		s.inflight[c.ID] = o
	}
	s.mu.Unlock()
	meta, err := json.Marshal(diskExpire{At: at, IDs: ids})
	if err == nil {
		o.rec, o.bodyAt = encodeRecord(kindExpire, maxSeq, meta, nil)
	}
	s.mu.Lock()
	if err == nil && s.closing {
		err = ErrClosed
	}
	if err != nil {
		s.releaseLocked(o, err)
		s.mu.Unlock()
		return nil, fmt.Errorf("prune: %w", err)
	}
	s.pending = append(s.pending, o)
	s.work.Signal()
	s.mu.Unlock()
	if _, err := s.await(ctx, o); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return done, nil
}

// stillExpiredLocked reports whether a candidate may still expire: it is
// the same patch (same Seq), not live, not being changed, and every newer
// applied patch that made it unneeded is still applied.
func (s *Store) stillExpiredLocked(c candidate, known map[string]seqState) bool {
	now := func(id string) (seqState, bool) {
		if e := s.idx.patches[id]; e != nil {
			return seqState{e.p.Seq, e.p.State}, !e.gone
		}
		st, ok := known[id]
		return st, ok
	}
	cur, ok := now(c.ID)
	if !ok || cur.seq != c.Seq || cur.state == StateQueued || cur.state == StateApplying || s.inflight[c.ID] != nil {
		return false
	}
	for _, g := range c.guards {
		gs, ok := now(g.id)
		if !ok || gs.seq != g.seq || gs.state != StateApplied || s.inflight[g.id] != nil {
			return false
		}
	}
	return true
}

// seqState is a patch's Seq and state.
type seqState struct {
	seq   uint64
	state State
}

// dbStates reads the Seq and state index.db has for each id.
func (s *Store) dbStates(ids []string) (map[string]seqState, error) {
	out := make(map[string]seqState, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		for _, id := range ids {
			e, ok, err := getEntry(tx, id)
			if err != nil {
				return err
			}
			if ok {
				out[id] = seqState{e.seq, e.state}
			}
		}
		return nil
	})
	return out, err
}

// expireOp is what an op of kind expire carries: when, and the patches.
type expireOp struct {
	at int64 // Unix nanoseconds
	ps []ExpiredPatch
}

// releaseExpireLocked frees the ids an expire op reserved.
func (s *Store) releaseExpireLocked(o *op) {
	for _, x := range o.expire.ps {
		if s.inflight[x.ID] == o {
			delete(s.inflight, x.ID)
		}
	}
}

// applyExpireLocked applies a committed expire op to the index.
func (s *Store) applyExpireLocked(o *op) {
	s.releaseExpireLocked(o)
	var maxSeq uint64
	for _, x := range o.expire.ps {
		maxSeq = max(maxSeq, x.Seq)
		// Checked under the mutex with the id reserved: the patch is
		// still what it was found to be.
		s.idx.expireOne(x.ID, o.expire.at, &entry{p: core{ID: x.ID, Seq: x.Seq, State: x.State}})
	}
	s.idx.expiredSeq = max(s.idx.expiredSeq, maxSeq)
	s.idxEventID += uint64(len(o.expire.ps))
	o.rec = nil
}

// diskExpire is the meta of an expire record: when, and which patches.
// The record's seq is the highest Seq among them, so that Seqs are never
// given again after a restart even when the newest patches expired.
type diskExpire struct {
	At  int64    `json:"at"`
	IDs []string `json:"ids"`
}

// applyExpireRecord replays an expire record.
func (s *Store) applyExpireRecord(r record) error {
	var d diskExpire
	if err := json.Unmarshal(r.meta, &d); err != nil {
		return fmt.Errorf("expire record: %w", err)
	}
	if d.At == 0 || slices.Contains(d.IDs, "") {
		return errors.New("expire record without a time or with an empty id")
	}
	for _, id := range d.IDs {
		base, found, err := s.base(id)
		if err != nil {
			return err
		}
		var bp *entry
		if found {
			bp = &base
		}
		s.idx.expireOne(id, d.At, bp)
	}
	s.idx.expiredSeq = max(s.idx.expiredSeq, r.seq)
	s.idxNextSeq = max(s.idxNextSeq, r.seq+1)
	s.idxEventID += uint64(len(d.IDs))
	return nil
}

// expireOne removes a patch from the index and leaves its tombstone (id →
// when it expired, Unix nanoseconds). base is the patch as found, nil if
// the store does not hold it. The entry stays in memory, gone, until a
// checkpoint has removed it from index.db.
func (x *index) expireOne(id string, at int64, base *entry) {
	if x.expired == nil {
		x.expired = make(map[string]int64)
	}
	x.expired[id] = at
	e := x.patches[id]
	if e == nil {
		if base == nil {
			return
		}
		e = x.adopt(base)
	}
	if e.gone {
		return
	}
	x.counts[e.p.State]--
	x.total--
	e.gone = true
	x.touch(e)
}

// Expired reports whether retention removed the patch with this id, and
// when. A patch that exists is never expired.
func (s *Store) Expired(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok, at, err := s.findLocked(id)
	if ok || at == 0 || err != nil {
		return time.Time{}, false
	}
	return fromNanos(at), true
}

// expireEvents appends one patch.expired event per patch of an expire op.
func expireEvents(evs []Event, o *op, after uint64, now time.Time) ([]Event, uint64) {
	for _, x := range o.expire.ps {
		after++
		evs = append(evs, Event{EventID: after, Time: now, Event: "patch.expired", ID: x.ID, Seq: x.Seq, State: x.State})
	}
	return evs, after
}

// journalBytes is about what a patch's current state takes in the
// journal: its body, inline blobs and newest record plus a record's
// framing.
func journalBytes(bodyLen int64, blobs []diskBlob, metaLen int64) int64 {
	return bodyLen + blobsLen(blobs) + metaLen + recHeaderLen + payloadFixed
}

// blobBytes is the size of a patch's blob files.
func (s *Store) blobBytes(id string) int64 {
	dir, _, err := s.blobPath(id, "x")
	if err != nil {
		return 0
	}
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// sweepBlobs removes the blob directories of expired patches that a
// crash left between an expire record and the removal of its blobs, and
// returns the bytes they held. It reads the names in dir/blobs only; a
// name that is not an escaped id (one too long, hashed) is left alone.
func (s *Store) sweepBlobs() int64 {
	names, err := readDirNames(filepath.Join(s.dir, "blobs"))
	if err != nil {
		s.log.Warn("retention: read the blob directories", "err", err)
		return 0
	}
	var n int64
	for _, name := range names {
		id, err := url.PathUnescape(name)
		if err != nil || id == "" {
			continue
		}
		if esc, err := escapeName(id); err != nil || esc != name {
			continue
		}
		// Expired answers only for a patch the store no longer holds.
		if _, expired := s.Expired(id); expired {
			n += s.removeBlobs(id)
		}
	}
	return n
}

// readDirNames lists a directory's entries by name, unsorted.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// removeBlobs removes a patch's blob directory and returns the bytes it
// held. A failure is logged: the patch is expired all the same.
func (s *Store) removeBlobs(id string) int64 {
	n := s.blobBytes(id)
	dir, _, err := s.blobPath(id, "x")
	if err != nil {
		return 0
	}
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("remove the blobs of an expired patch", "id", id, "err", err)
		return 0
	}
	return n
}
