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
	"sort"
	"time"
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
	// JournalBytes is what the expired patches' records take in the
	// journal. The journal keeps them for now: its segments are not yet
	// dropped when only expired patches' records are left in them.
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
	res.Kept = len(s.idx.patches)
	res.OldestKept = time.Time{}
	if len(s.idx.bySeq) > 0 {
		res.OldestKept = s.oldestLocked()
	}
	s.mu.Unlock()
	return res, nil
}

// oldestLocked is the earliest ReceivedAt of the patches held. Seq order
// is arrival order but for patches sent again, so it looks at the first
// chunk and takes the least.
func (s *Store) oldestLocked() time.Time {
	var t time.Time
	for _, e := range s.idx.bySeq[:min(len(s.idx.bySeq), pruneChunk)] {
		if t.IsZero() || e.p.ReceivedAt.Before(t) {
			t = e.p.ReceivedAt
		}
	}
	return t
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
	type seen struct {
		p    ExpiredPatch
		live int64
		// files are the paths the patch changed (strings shared with the
		// index's copy, which never changes them).
		files []string
	}
	var batch []seen
	for {
		if err := ctx.Err(); err != nil {
			return nil, PruneResult{}, err
		}
		batch = batch[:0]
		s.mu.Lock()
		bySeq := s.idx.bySeq
		end := sort.Search(len(bySeq), func(i int) bool { return bySeq[i].p.Seq >= cursor })
		for i := end - 1; i >= 0 && i >= end-pruneChunk; i-- {
			e := bySeq[i]
			sn := seen{p: ExpiredPatch{ID: e.p.ID, Seq: e.p.Seq, State: e.p.State, ReceivedAt: e.p.ReceivedAt}, live: journalBytes(e)}
			for _, f := range e.p.Files {
				sn.files = append(sn.files, f.Path)
			}
			batch = append(batch, sn)
		}
		s.mu.Unlock()
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
	s.mu.Lock()
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
		if !s.stillExpiredLocked(c) {
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
func (s *Store) stillExpiredLocked(c candidate) bool {
	e, ok := s.idx.patches[c.ID]
	if !ok || e.p.Seq != c.Seq || e.p.State == StateQueued || e.p.State == StateApplying || s.inflight[c.ID] != nil {
		return false
	}
	for _, g := range c.guards {
		ge, ok := s.idx.patches[g.id]
		if !ok || ge.p.Seq != g.seq || ge.p.State != StateApplied || s.inflight[g.id] != nil {
			return false
		}
	}
	return true
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
	ids := make([]string, len(o.expire.ps))
	var maxSeq uint64
	for i, x := range o.expire.ps {
		ids[i], maxSeq = x.ID, max(maxSeq, x.Seq)
	}
	s.idx.expire(ids, o.expire.at, maxSeq)
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
func applyExpireRecord(idx *index, r record) error {
	var d diskExpire
	if err := json.Unmarshal(r.meta, &d); err != nil {
		return fmt.Errorf("expire record: %w", err)
	}
	if d.At == 0 || slices.Contains(d.IDs, "") {
		return errors.New("expire record without a time or with an empty id")
	}
	idx.expire(d.IDs, d.At, r.seq)
	return nil
}

// expire removes the patches from the index and leaves tombstones: id →
// when it expired (Unix nanoseconds). maxSeq is the record's seq.
func (x *index) expire(ids []string, at int64, maxSeq uint64) {
	if x.expired == nil {
		x.expired = make(map[string]int64)
	}
	x.expiredSeq = max(x.expiredSeq, maxSeq)
	gone := false
	lowest, highest := uint64(math.MaxUint64), uint64(0)
	for _, id := range ids {
		x.expired[id] = at
		e, ok := x.patches[id]
		if !ok {
			continue
		}
		delete(x.patches, id)
		x.counts[e.p.State]--
		e.gone = true
		gone = true
		lowest, highest = min(lowest, e.p.Seq), max(highest, e.p.Seq)
	}
	if !gone {
		return
	}
	// Only the span of Seqs the record names is looked at; the patches
	// after it move down in one copy.
	n := len(x.bySeq)
	i := sort.Search(n, func(i int) bool { return x.bySeq[i].p.Seq >= lowest })
	j := sort.Search(n, func(j int) bool { return x.bySeq[j].p.Seq > highest })
	kept := slices.DeleteFunc(x.bySeq[i:j], func(e *entry) bool { return e.gone })
	end := i + len(kept)
	end += copy(x.bySeq[end:], x.bySeq[j:])
	clear(x.bySeq[end:]) // no expired entry stays reachable
	x.bySeq = x.bySeq[:end]
}

// Expired reports whether retention removed the patch with this id, and
// when. A patch that exists is never expired.
func (s *Store) Expired(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.idx.expired[id]
	if !ok {
		return time.Time{}, false
	}
	return fromNanos(at), true
}

// expiredLocked is the refusal of a submission of an expired id, or nil.
func (s *Store) expiredLocked(id string) error {
	if at, ok := s.idx.expired[id]; ok {
		return &ExpiredError{ID: id, At: fromNanos(at)}
	}
	return nil
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
// journal: its body, inline blobs and diff plus a record's framing.
func journalBytes(e *entry) int64 {
	return e.bodyLen + blobsLen(e.blobs) + e.diff.n + recHeaderLen + payloadFixed
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
		s.mu.Lock()
		_, expired := s.idx.expired[id]
		_, held := s.idx.patches[id]
		s.mu.Unlock()
		if expired && !held {
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
