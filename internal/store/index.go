package store

import (
	"container/heap"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// entry is the record of one patch as the store works with it. The body
// stays in the journal, at body, and so does the newest record's meta, at
// meta.
//
// An entry keeps the fields every patch has in p and the rest in cold,
// which is nil while all of it is empty: so it is for every queued
// patch, and a backlog of queued patches is held in memory. With the
// whole Patch in the entry (512 bytes, 208 of them a queued patch's empty
// outcome), a queued patch took ~860 bytes of heap; so it takes ~590
// (TestQueuedPatchHeap). A cold part is never changed once set (copy on
// write): a copy of an entry may share it.
type entry struct {
	p       core
	cold    *cold
	body    ref
	bodyLen int64
	meta    ref // the newest record's meta
	metaLen int64
	gen     uint64 // the index's generation when the entry last changed
	// fresh and dbLive are what index.db had of the patch when the entry
	// was made, until its first snapshot (then index.dbState tells):
	// fresh, nothing (put by the committer, so the checkpoint need not
	// look for an older entry); dbLive, the Seq under which its live
	// chunks have the patch, or 0 (its entry, if any, is in ids).
	dbLive uint64
	// pos is the entry's place in index.all while the overlay holds it.
	pos int
	// snapped: a snapshot of the entry was taken for a checkpoint
	// (index.snap), the latest in the index's epoch ckEpoch; snapLive is
	// its liveSeq. unsnapped: the entry changed since (touch), and is in
	// index.unsnapped.
	ckEpoch, snapLive uint64
	metaCRC           uint32 // CRC-32C of the meta, checked when it is read back
	// The flags last, with metaCRC: together they fill one word.
	gone               bool // expired: removed from index.db at the next checkpoint
	fresh              bool // see dbLive
	snapped, unsnapped bool // see ckEpoch
}

// core is what every patch has of a Patch: the fields a queued patch
// sets.
type core struct {
	ID          string
	Seq         uint64
	Hash        string
	Role        string
	Target      string
	Description string
	State       State
	ReceivedAt  time.Time
}

// cold is the rest of an entry: the Patch's outcome fields, where its
// update's inline blobs are in the journal (one after the other from
// blob), and where its diff is (Diff is then "").
type cold struct {
	Error                             string
	Diff                              string
	Files                             []FileChange
	Notes                             []string
	Commit                            string
	StartedAt, FinishedAt, RevertedAt time.Time
	Code                              string
	Attempts                          []Attempt

	blob  ref
	blobs []diskBlob
	diff  diffRef
}

// empty reports whether c holds nothing (nil slices and zero values
// only, so that a Patch comes back exactly as it was set).
func (c *cold) empty() bool {
	var zt time.Time
	return c.Error == "" && c.Diff == "" && c.Files == nil && c.Notes == nil && c.Commit == "" &&
		c.StartedAt == zt && c.FinishedAt == zt && c.RevertedAt == zt && c.Code == "" && c.Attempts == nil &&
		c.blob == ref{} && c.blobs == nil && c.diff == diffRef{}
}

// coldCopy is e's cold part to change: a copy, or a new one.
func (e *entry) coldCopy() *cold {
	c := *e.rest()
	return &c
}

// setCold makes c e's cold part, or none if c is empty.
func (e *entry) setCold(c *cold) {
	if c.empty() {
		c = nil
	}
	e.cold = c
}

// patch is e's patch, sharing its slices with e (which never changes
// them: clone it to change them).
func (e *entry) patch() Patch {
	p := Patch{ID: e.p.ID, Seq: e.p.Seq, Hash: e.p.Hash, Role: e.p.Role, Target: e.p.Target,
		Description: e.p.Description, State: e.p.State, ReceivedAt: e.p.ReceivedAt}
	c := e.rest()
	p.Error, p.Diff, p.Files, p.Notes, p.Commit = c.Error, c.Diff, c.Files, c.Notes, c.Commit
	p.StartedAt, p.FinishedAt, p.RevertedAt = c.StartedAt, c.FinishedAt, c.RevertedAt
	p.Code, p.Attempts = c.Code, c.Attempts
	return p
}

// setPatch makes p e's patch; e keeps its blobs and where its diff is.
func (e *entry) setPatch(p Patch) {
	e.p = core{ID: p.ID, Seq: p.Seq, Hash: p.Hash, Role: p.Role, Target: p.Target,
		Description: p.Description, State: p.State, ReceivedAt: p.ReceivedAt}
	c := cold{Error: p.Error, Diff: p.Diff, Files: p.Files, Notes: p.Notes, Commit: p.Commit,
		StartedAt: p.StartedAt, FinishedAt: p.FinishedAt, RevertedAt: p.RevertedAt,
		Code: p.Code, Attempts: p.Attempts}
	r := e.rest()
	c.blob, c.blobs, c.diff = r.blob, r.blobs, r.diff
	e.setCold(&c)
}

// newEntry is an entry of p with its body.
func newEntry(p Patch, body ref, bodyLen int64) *entry {
	e := &entry{body: body, bodyLen: bodyLen}
	e.setPatch(p)
	return e
}

// noCold is the cold part of an entry that has none. Nothing changes
// it: a cold part is changed only through coldCopy.
var noCold cold

// rest is e's cold part, to read: an empty one if it has none.
func (e *entry) rest() *cold {
	if e.cold == nil {
		return &noCold
	}
	return e.cold
}

// copyEntry returns a copy of e that shares no memory the index changes.
func (e *entry) copyEntry() entry {
	c := *e
	if e.cold != nil {
		cc := *e.cold
		cc.Files = slices.Clone(cc.Files)
		cc.Notes = slices.Clone(cc.Notes)
		cc.Attempts = slices.Clone(cc.Attempts)
		c.cold = &cc
	}
	return c
}

// blobsLen is the length of inline blobs together.
func blobsLen(blobs []diskBlob) int64 {
	var n int64
	for _, b := range blobs {
		n += b.Len
	}
	return n
}

// setBlobs applies an update record's inline blobs (at off in the journal)
// to its entry: a record with blobs replaces the entry's, and an applying
// record without any drops them, since they belonged to an earlier attempt
// (the worker stores each attempt's backups anew).
func (e *entry) setBlobs(at ref, blobs []diskBlob) {
	var c *cold
	switch {
	case len(blobs) > 0:
		c = e.coldCopy()
		c.blob, c.blobs = at, blobs
	case e.p.State == StateApplying && (e.rest().blobs != nil || e.rest().blob != ref{}):
		c = e.coldCopy()
		c.blob, c.blobs = ref{}, nil
	default:
		return
	}
	e.setCold(c)
}

// live reports whether the worker has yet to finish with the patch: such
// entries always stay in memory.
func (e *entry) live() bool { return e.p.State == StateQueued || e.p.State == StateApplying }

// index is the in-memory part of the store's index, the overlay over
// index.db: the live patches (queued, applying) and every patch changed
// since the last checkpoint, and the counts of all patches by state. It
// does no locking; the Store guards it with its mutex. What is not here
// is in index.db as the last checkpoint wrote it.
type index struct {
	patches map[string]*entry
	// all holds the entries of patches, in no order (entry.pos): the
	// passes over the overlay under the store's mutex (List, Prune's
	// walk) read a slice, not the map, which took ~80 ns an entry, 3.5-5
	// ms with 40,000 patches queued. set and drop keep the two alike.
	all     []*entry
	queued  seqHeap  // queued patches, lazily cleaned
	recover []*entry // left applying by the previous process (ascending Seq) or by a failed Update
	counts  map[State]int
	total   int
	gen     uint64 // counts changes
	// dirty holds the snapshot of each patch changed since the last
	// checkpoint took the set (epoch counts those), as it is now: a
	// checkpoint swaps the map for an empty one under the store's mutex,
	// and writes the snapshots with the mutex released. Before, it copied
	// every changed entry under the mutex, and every Submit waited: 2.5-20
	// ms for the ~12,000 a second of 64 clients, which put their p99 20-30%
	// over a build without checkpoints. Taken at each change (snapAll), a
	// snapshot costs ~0.4 µs (in-process, 13,000 queued
	// patches in batches of 13), in the committer's hold of the mutex.
	dirty     map[string]*ckItem
	epoch     uint64
	unsnapped []*entry      // touched since the last snapAll
	dropGen   atomic.Uint64 // counts the checkpoints that dropped entries; changed under the mutex
	// expired are the tombstones of patches expired since the last
	// checkpoint (index.db has the older ones): id → when (Unix
	// nanoseconds); expiredSeq is the highest Seq an expired patch had.
	expired    map[string]int64
	expiredSeq uint64
}

// dirtyHint is the size a new dirty set is made for, at least: growing
// a map rehashes it, in the committer's hold of the mutex (60 of the 80
// ms snapshots took in 6 s under 64 clients, from a fresh daemon).
const dirtyHint = 1024

func newIndex() *index {
	return &index{patches: make(map[string]*entry), counts: make(map[State]int), dirty: make(map[string]*ckItem, dirtyHint)}
}

// set makes e the overlay's entry for id, in place of any other.
func (x *index) set(id string, e *entry) {
	if old := x.patches[id]; old != nil {
		e.pos = old.pos
		x.all[e.pos] = e
	} else {
		e.pos = len(x.all)
		x.all = append(x.all, e)
	}
	x.patches[id] = e
}

// drop takes id's entry out of the overlay.
func (x *index) drop(id string) {
	e := x.patches[id]
	if e == nil {
		return
	}
	last := x.all[len(x.all)-1]
	x.all[e.pos], last.pos = last, e.pos
	x.all[len(x.all)-1] = nil
	x.all = x.all[:len(x.all)-1]
	delete(x.patches, id)
}

// touch marks e changed. Its snapshot is taken by the next snapAll, once
// the change is whole: the committer calls it at the end of each batch,
// replay after each of its batches, and a checkpoint before it takes the
// set, so that no change is left out of one.
func (x *index) touch(e *entry) {
	x.gen++
	e.gen = x.gen
	if !e.unsnapped {
		e.unsnapped = true
		x.unsnapped = append(x.unsnapped, e)
	}
}

// snapAll takes the snapshot of each entry touched since the last call.
func (x *index) snapAll() {
	for i, e := range x.unsnapped {
		e.unsnapped = false
		// Still the overlay's entry of its patch (not replaced by a new
		// attempt, nor dropped): a pointer compared, no id hashed.
		if e.pos < len(x.all) && x.all[e.pos] == e {
			x.snap(e)
		}
		x.unsnapped[i] = nil
	}
	x.unsnapped = x.unsnapped[:0]
}

// snap makes dirty's snapshot of e's patch what e is now. One taken since
// the last checkpoint took the set is overwritten in place (no checkpoint
// reads it yet); otherwise a new one starts from what index.db has of the
// patch (dbState). The entry keeps no pointer to it: a checkpoint's
// snapshots are garbage once written.
func (x *index) snap(e *entry) {
	var it *ckItem
	if e.snapped && e.ckEpoch == x.epoch {
		it = x.dirty[e.p.ID]
	} else {
		fresh, dbLive := x.dbState(e)
		it = &ckItem{fresh: fresh, dbLive: dbLive}
		x.dirty[e.p.ID] = it
	}
	it.id, it.e, it.gone, it.ent = e.p.ID, e.toDB(it.e.files[:0]), e.gone, e
	e.snapped, e.ckEpoch, e.snapLive = true, x.epoch, it.liveSeq()
}

// dbState is what index.db has of e's patch, counting the checkpoints
// that took e's snapshots as written (one whose write fails puts its
// snapshots back): fresh, nothing (put since); dbLive, the Seq of its
// live entry, or 0 (then any entry it has is in ids).
func (x *index) dbState(e *entry) (fresh bool, dbLive uint64) {
	switch {
	case !e.snapped:
		return e.fresh, e.dbLive
	case e.ckEpoch == x.epoch:
		// Not taken by a checkpoint yet: what it starts from.
		it := x.dirty[e.p.ID]
		return it.fresh, it.dbLive
	default:
		return false, e.snapLive
	}
}

// put adds a new patch, which the caller made sure is not in the store.
func (x *index) put(p Patch, body ref, bodyLen int64) *entry {
	e := newEntry(p, body, bodyLen)
	x.set(p.ID, e)
	x.counts[p.State]++
	x.total++
	if p.State == StateQueued {
		heap.Push(&x.queued, e)
	}
	x.touch(e)
	return e
}

// adopt returns the overlay's entry for base's patch, bringing base (read
// from index.db) into the overlay if it is not there.
func (x *index) adopt(base *entry) *entry {
	if e := x.patches[base.p.ID]; e != nil {
		return e
	}
	e := new(entry)
	*e = base.copyEntry()
	x.set(e.p.ID, e)
	return e
}

// update replaces a patch's record; base is the patch as found before
// (used when the overlay no longer holds it). It returns the state it
// had.
func (x *index) update(p Patch, base *entry) (*entry, State) {
	e := x.adopt(base)
	prev := e.p.State
	x.counts[prev]--
	x.counts[p.State]++
	e.setPatch(p)
	if p.State == StateQueued && prev != StateQueued {
		heap.Push(&x.queued, e)
	}
	x.touch(e)
	return e, prev
}

// reattempt replaces a failed patch's record by its new attempt p (a new
// Seq, queued, with a new body); the inline blobs of the failed attempt
// are dropped. base is the failed patch, or nil if the store does not
// hold it (a damaged journal lost its put): then p is added as put adds
// it.
func (x *index) reattempt(p Patch, body ref, bodyLen int64, base *entry) *entry {
	if base == nil && x.patches[p.ID] == nil {
		return x.put(p, body, bodyLen)
	}
	var old State
	if e := x.patches[p.ID]; e != nil {
		old = e.p.State
	} else {
		old = base.p.State
	}
	x.counts[old]--
	// A new entry: the old one may still sit in the queue's heap (a patch
	// dropped while queued), where its Seq must not change; failed, it is
	// cleaned from there as any other.
	e := newEntry(p, body, bodyLen)
	if prev := x.patches[p.ID]; prev != nil {
		// What index.db has of the patch is what it had of the earlier
		// attempt: a live entry under the old Seq (queued at the last
		// checkpoint, failed since) is taken out by the next checkpoint
		// only if it knows that Seq. Without it, the earlier attempt
		// stayed in the live chunks and came back queued at a later Open.
		e.fresh, e.dbLive = prev.fresh, prev.dbLive
		e.snapped, e.ckEpoch, e.snapLive = prev.snapped, prev.ckEpoch, prev.snapLive
	}
	x.set(p.ID, e)
	x.counts[p.State]++
	if p.State == StateQueued {
		heap.Push(&x.queued, e)
	}
	x.touch(e)
	return e
}

// markRecovery remembers the patches a crash left applying, so that the
// worker gets them first.
func (x *index) markRecovery() {
	x.recover = x.recover[:0]
	for _, e := range x.all {
		if e.p.State == StateApplying {
			x.recover = append(x.recover, e)
		}
	}
	slices.SortFunc(x.recover, func(a, b *entry) int { return cmpSeq(a.p.Seq, b.p.Seq) })
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// retry makes next return the patch again if it is applying: the Update
// that was to move it on was not written.
func (x *index) retry(id string) {
	e, ok := x.patches[id]
	if ok && e.p.State == StateApplying && !slices.Contains(x.recover, e) {
		x.recover = append(x.recover, e)
	}
}

// next returns the patch the worker should handle now, or nil.
func (x *index) next() *entry {
	for len(x.recover) > 0 {
		if e := x.recover[0]; e.p.State == StateApplying && x.patches[e.p.ID] == e {
			return e
		}
		x.recover = x.recover[1:]
	}
	for x.queued.Len() > 0 {
		if e := x.queued[0]; e.p.State == StateQueued && x.patches[e.p.ID] == e {
			return e
		}
		heap.Pop(&x.queued)
	}
	return nil
}

// listed is a patch as list copies it, with where its diff is.
type listed struct {
	p    Patch
	diff diffRef
}

// CursorAfter is the cursor of the page that follows p in a listing:
// the patches before it, newest first.
func CursorAfter(p Patch) string { return strconv.FormatUint(p.Seq, 10) }

// seqHeap is a min-heap of entries by Seq.
type seqHeap []*entry

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].p.Seq < h[j].p.Seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(v any)        { *h = append(*h, v.(*entry)) }
func (h *seqHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
