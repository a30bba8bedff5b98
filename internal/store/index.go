package store

import (
	"container/heap"
	"slices"
	"sort"
	"strconv"
)

// entry is the in-memory record of one patch. The body stays in the
// journal, at body, and so do its inline blobs, one after the other from
// blob.
type entry struct {
	p       Patch
	body    ref
	bodyLen int64
	blob    ref
	blobs   []diskBlob
	diff    diffRef // where p.Diff is in the journal (p.Diff is then "")
	gone    bool    // expired: no longer in the index
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
	switch {
	case len(blobs) > 0:
		e.blob, e.blobs = at, blobs
	case e.p.State == StateApplying:
		e.blob, e.blobs = ref{}, nil
	}
}

// index holds the durable state of every patch. It does no locking; the
// Store guards it with its mutex.
type index struct {
	patches map[string]*entry
	bySeq   []*entry // ascending Seq
	queued  seqHeap  // queued patches, lazily cleaned
	recover []*entry // left applying by the previous process (ascending Seq) or by a failed Update
	counts  map[State]int
	// expired are the tombstones of expired patches: id → when (Unix
	// nanoseconds); expiredSeq is the highest Seq an expired patch had.
	expired    map[string]int64
	expiredSeq uint64
}

func newIndex() *index {
	return &index{patches: make(map[string]*entry), counts: make(map[State]int)}
}

// put adds a new patch; it reports false if the id exists.
func (x *index) put(p Patch, body ref, bodyLen int64) (*entry, bool) {
	if _, ok := x.patches[p.ID]; ok {
		return nil, false
	}
	e := &entry{p: p, body: body, bodyLen: bodyLen}
	x.patches[p.ID] = e
	if n := len(x.bySeq); n > 0 && x.bySeq[n-1].p.Seq > p.Seq {
		// Only a damaged journal replays out of order.
		i := sort.Search(n, func(i int) bool { return x.bySeq[i].p.Seq > p.Seq })
		x.bySeq = slices.Insert(x.bySeq, i, e)
	} else {
		x.bySeq = append(x.bySeq, e)
	}
	x.counts[p.State]++
	if p.State == StateQueued {
		heap.Push(&x.queued, e)
	}
	return e, true
}

// update replaces a patch's record and returns the state it had.
func (x *index) update(p Patch) (*entry, State, bool) {
	e, ok := x.patches[p.ID]
	if !ok {
		return nil, "", false
	}
	prev := e.p.State
	x.counts[prev]--
	x.counts[p.State]++
	e.p = p
	if p.State == StateQueued && prev != StateQueued {
		heap.Push(&x.queued, e)
	}
	return e, prev, true
}

// reattempt replaces a failed patch's record by its new attempt p (a new
// Seq, queued, with a new body): its place in Seq order moves to p's, and
// the inline blobs of the failed attempt are dropped. A patch the index
// does not hold (a damaged journal lost its put) is added as put adds it.
func (x *index) reattempt(p Patch, body ref, bodyLen int64) *entry {
	e, ok := x.patches[p.ID]
	if !ok {
		e, _ = x.put(p, body, bodyLen)
		return e
	}
	i := sort.Search(len(x.bySeq), func(i int) bool { return x.bySeq[i].p.Seq >= e.p.Seq })
	if i == len(x.bySeq) || x.bySeq[i] != e {
		i = slices.Index(x.bySeq, e)
	}
	if i >= 0 {
		x.bySeq = slices.Delete(x.bySeq, i, i+1)
	}
	x.counts[e.p.State]--
	// A new entry: the old one may still sit in the queue's heap (a patch
	// dropped while queued), where its Seq must not change; failed, it is
	// cleaned from there as any other.
	e = &entry{p: p, body: body, bodyLen: bodyLen}
	x.patches[p.ID] = e
	x.counts[p.State]++
	n := len(x.bySeq)
	if j := sort.Search(n, func(j int) bool { return x.bySeq[j].p.Seq > p.Seq }); j < n {
		x.bySeq = slices.Insert(x.bySeq, j, e)
	} else {
		x.bySeq = append(x.bySeq, e)
	}
	if p.State == StateQueued {
		heap.Push(&x.queued, e)
	}
	return e
}

// markRecovery remembers the patches a crash left applying, so that the
// worker gets them first.
func (x *index) markRecovery() {
	x.recover = x.recover[:0]
	for _, e := range x.bySeq {
		if e.p.State == StateApplying {
			x.recover = append(x.recover, e)
		}
	}
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
		if e := x.recover[0]; e.p.State == StateApplying {
			return e
		}
		x.recover = x.recover[1:]
	}
	for x.queued.Len() > 0 {
		if e := x.queued[0]; e.p.State == StateQueued {
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

// list implements Store.List.
// CursorAfter is the cursor of the page that follows p in a listing:
// the patches before it, newest first.
func CursorAfter(p Patch) string { return strconv.FormatUint(p.Seq, 10) }

func (x *index) list(cursor string, limit int, state State) ([]listed, string) {
	end := len(x.bySeq)
	if cursor != "" {
		seq, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, ""
		}
		end = sort.Search(len(x.bySeq), func(i int) bool { return x.bySeq[i].p.Seq >= seq })
	}
	var out []listed
	for i := end - 1; i >= 0; i-- {
		e := x.bySeq[i]
		if state != "" && e.p.State != state {
			continue
		}
		if len(out) == limit {
			return out, strconv.FormatUint(out[len(out)-1].p.Seq, 10)
		}
		out = append(out, listed{e.p.clone(), e.diff})
	}
	return out, ""
}

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
