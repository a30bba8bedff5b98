package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// index.db (go.etcd.io/bbolt) is the index's checkpoint: doc.go describes
// what it holds. These are its buckets and the binary form of its values.

var (
	bMeta = []byte("meta") // "v": format version; "ck": the checkpoint's ckMeta
	bIDs  = []byte("ids")  // id → dbEntry, of a patch that is not live
	bSeq  = []byte("seq")  // seq (8 bytes, big-endian) → id, of a patch that is not live
	bFin  = []byte("fin")  // finished or reverted at (8 bytes) + seq (8 bytes) → id
	// bLive holds the live patches (queued, applying), and only it: no
	// entry in ids (anywhere in that tree, as ids come) nor keys in seq
	// and state/queued. They are in chunks of liveChunk Seqs: the key is
	// the range's first Seq (8 bytes, big-endian), the value its live
	// patches in Seq order, each an uvarint length and appendLive (id
	// and entry). A patch's chunk follows from its Seq, and a checkpoint
	// under a backlog puts one key per liveChunk new patches: with a key
	// per patch (format 3), the Puts were 80% of its CPU
	// (BenchmarkCheckpointQueued: ~2.4 µs a patch, ~0.5 without them).
	// Every live patch is in memory too, so no lookup by id or List needs
	// them here.
	bLive = []byte("live-chunks")
	// bLiveV3 is format 3's live bucket: seq → appendLive, a key each.
	bLiveV3 = []byte("live")
	// bExpired holds the tombstones of expired patches: id → when (Unix
	// nanoseconds, 8 bytes big-endian).
	bExpired = []byte("tombstones")
	// bSegRefs counts, per segment (4 bytes big-endian), the patches whose
	// entry refers to it (meta, body or inline blobs), 8 bytes big-endian;
	// a segment with none is absent.
	bSegRefs = []byte("segrefs")
	// bDropped lists the segments dropped because no patch referred to
	// them any more: segment → when (Unix nanoseconds).
	bDropped = []byte("dropped-segments")
)

// bState is the bucket of the patches in a state: seq → id (the states
// of patches that are not live: live ones are in bLive).
func bState(st State) []byte { return []byte("state/" + string(st)) }

// indexVersion is the format of index.db; formats 2 to 4 are migrated
// (migrate), another one is rebuilt. Format 3 moved the live patches to
// a bucket of their own and dropped the files bucket, which nothing
// read; format 4 keeps them in chunks (bLive); format 5 is 4 without the
// stale live entries that builds writing 3 and 4 could leave
// (migrateV4).
const indexVersion = 5

// liveChunk is how many Seqs a chunk of bLive covers (a power of two).
const liveChunk = 256

// chunkOf is the key of the chunk of bLive that has the live patch seq.
func chunkOf(seq uint64) uint64 { return seq &^ (liveChunk - 1) }

// liveRec is one live patch in a chunk of bLive: raw is its appendLive
// (the entry decoded on demand, by entry). Small, as a checkpoint appends
// and sorts thousands of them.
type liveRec struct {
	seq uint64
	id  string
	raw []byte
}

// entry decodes the record's entry.
func (r *liveRec) entry() (dbEntry, error) {
	_, e, err := decodeLive(r.raw)
	return e, err
}

// decodeChunk reads a value of bLive: each record's id and Seq (its entry
// is decoded by liveRec.entry); raw aliases v.
func decodeChunk(v []byte) ([]liveRec, error) {
	var recs []liveRec
	for len(v) > 0 {
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			return nil, errBadEntry
		}
		raw := v[w : w+int(n)]
		d := dec{b: raw}
		id := d.str()
		// The entry begins with its format and state bytes, then its Seq.
		if d.err != nil || len(d.b) < 3 {
			return nil, errBadEntry
		}
		seq, sw := binary.Uvarint(d.b[2:])
		if sw <= 0 {
			return nil, errBadEntry
		}
		recs = append(recs, liveRec{seq: seq, id: id, raw: raw})
		v = v[w+int(n):]
	}
	return recs, nil
}

// encodeChunk is the value of bLive for recs, in their order.
func encodeChunk(recs []liveRec) []byte {
	n := 0
	for _, r := range recs {
		n += binary.MaxVarintLen32 + len(r.raw)
	}
	b := make([]byte, 0, n)
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(len(r.raw)))
		b = append(b, r.raw...)
	}
	return b
}

// dbEntry is what index.db keeps of a patch: enough to list and filter
// it, and where its newest record's meta, its body and its inline blobs
// are in the journal. The patch itself is read from the meta.
type dbEntry struct {
	seq                          uint64
	state                        State
	received, finished, reverted int64
	meta                         ref
	metaLen                      int64
	metaCRC                      uint32
	body                         ref
	bodyLen                      int64
	blob                         ref
	blobs                        []diskBlob
	files                        []string
}

// live says if the patch is queued or applying.
func (d *dbEntry) live() bool { return d.state == StateQueued || d.state == StateApplying }

// appendLive is a live patch's value in bLive: its id, then its entry.
func appendLive(id string, d *dbEntry) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 80+len(id)), uint64(len(id)))
	return d.appendTo(append(b, id...))
}

// decodeLive reads a value of bLive.
func decodeLive(v []byte) (id string, e dbEntry, err error) {
	d := dec{b: v}
	if id = d.str(); d.err != nil {
		return "", e, d.err
	}
	e, err = decodeEntry(d.b)
	return id, e, err
}

// segs are the segments an entry refers to, each once.
func (d *dbEntry) segs() []uint32 {
	out := []uint32{d.meta.seg}
	if d.body.seg != d.meta.seg {
		out = append(out, d.body.seg)
	}
	if len(d.blobs) > 0 && !slices.Contains(out, d.blob.seg) {
		out = append(out, d.blob.seg)
	}
	return out
}

// toDB is what index.db keeps of e; its files are appended to files.
func (e *entry) toDB(files []string) dbEntry {
	d := dbEntry{
		seq: e.p.Seq, state: e.p.State,
		received: nanos(e.p.ReceivedAt), finished: nanos(e.rest().FinishedAt), reverted: nanos(e.rest().RevertedAt),
		meta: e.meta, metaLen: e.metaLen, metaCRC: e.metaCRC, body: e.body, bodyLen: e.bodyLen,
		files: files,
	}
	d.blob, d.blobs = e.rest().blob, e.rest().blobs
	for _, f := range e.rest().Files {
		d.files = append(d.files, f.Path)
	}
	return d
}

// stateCode is st's number in index.db: its place in States from 1, 0
// for no known state.
func stateCode(st State) byte {
	switch st {
	case StateQueued:
		return 1
	case StateApplying:
		return 2
	case StateApplied:
		return 3
	case StateFailed:
		return 4
	case StateReverted:
		return 5
	}
	return 0
}

func appendRef(b []byte, r ref) []byte {
	b = binary.AppendUvarint(b, uint64(r.seg))
	return binary.AppendVarint(b, r.off)
}

func (d *dbEntry) encode() []byte { return d.appendTo(make([]byte, 0, 64)) }

// appendTo appends the entry's encoding to b.
func (d *dbEntry) appendTo(b []byte) []byte {
	b = append(b, 1, stateCode(d.state))
	b = binary.AppendUvarint(b, d.seq)
	b = binary.AppendVarint(b, d.received)
	b = binary.AppendVarint(b, d.finished)
	b = binary.AppendVarint(b, d.reverted)
	b = appendRef(b, d.meta)
	b = binary.AppendVarint(b, d.metaLen)
	b = binary.AppendUvarint(b, uint64(d.metaCRC))
	b = appendRef(b, d.body)
	b = binary.AppendVarint(b, d.bodyLen)
	b = appendRef(b, d.blob)
	b = binary.AppendUvarint(b, uint64(len(d.blobs)))
	for _, bl := range d.blobs {
		b = binary.AppendUvarint(b, uint64(len(bl.Name)))
		b = append(b, bl.Name...)
		b = binary.AppendVarint(b, bl.Len)
	}
	b = binary.AppendUvarint(b, uint64(len(d.files)))
	for _, f := range d.files {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

var errBadEntry = errors.New("index entry damaged")

// dec reads the varints of an encoded value; the first failure sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errBadEntry, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errBadEntry, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) ref() ref { return ref{uint32(d.u()), d.i()} }

func (d *dec) str() string {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.err, d.b = errBadEntry, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func decodeEntry(b []byte) (dbEntry, error) {
	var e dbEntry
	if len(b) < 2 || b[0] != 1 || b[1] == 0 || int(b[1]) > len(States()) {
		return e, errBadEntry
	}
	e.state = States()[b[1]-1]
	d := dec{b: b[2:]}
	e.seq = d.u()
	e.received, e.finished, e.reverted = d.i(), d.i(), d.i()
	e.meta, e.metaLen = d.ref(), d.i()
	e.metaCRC = uint32(d.u())
	e.body, e.bodyLen = d.ref(), d.i()
	e.blob = d.ref()
	n := d.u()
	for i := uint64(0); i < n && d.err == nil; i++ {
		e.blobs = append(e.blobs, diskBlob{Name: d.str(), Len: d.i()})
	}
	n = d.u()
	for i := uint64(0); i < n && d.err == nil; i++ {
		e.files = append(e.files, d.str())
	}
	return e, d.err
}

// ckMeta is the checkpoint's own record: up to where the journal is in
// index.db, and what replay needs to go on from there.
type ckMeta struct {
	// wm is the watermark: the end of the last record in index.db.
	wm ref
	// last is where that record starts, and crc its CRC: a journal that
	// does not have that record there is not the one index.db was made
	// from. last.seg == 0: no record yet.
	last     ref
	crc      uint32
	nextSeq  uint64
	eventID  uint64 // the number of the last event at the watermark
	firstSeg uint32 // the lowest segment the index refers to
	total    uint64
	counts   [5]uint64 // by state, in the order of States
}

func (m *ckMeta) encode() []byte {
	b := []byte{1}
	b = appendRef(b, m.wm)
	b = appendRef(b, m.last)
	b = binary.AppendUvarint(b, uint64(m.crc))
	b = binary.AppendUvarint(b, m.nextSeq)
	b = binary.AppendUvarint(b, m.eventID)
	b = binary.AppendUvarint(b, uint64(m.firstSeg))
	b = binary.AppendUvarint(b, m.total)
	for _, c := range m.counts {
		b = binary.AppendUvarint(b, c)
	}
	return b
}

func decodeCkMeta(b []byte) (ckMeta, error) {
	var m ckMeta
	if len(b) < 1 || b[0] != 1 {
		return m, errBadEntry
	}
	d := dec{b: b[1:]}
	m.wm, m.last = d.ref(), d.ref()
	m.crc = uint32(d.u())
	m.nextSeq, m.eventID = d.u(), d.u()
	m.firstSeg = uint32(d.u())
	m.total = d.u()
	for i := range m.counts {
		m.counts[i] = d.u()
	}
	return m, d.err
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func finKey(at int64, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(at)), seq)
}

// ckItem is one patch a checkpoint writes, or removes (gone): the
// snapshot of its entry (index.snap). fresh says index.db cannot have it:
// the patch was put since the last checkpoint took the changed set, so
// there is no older entry of it to find and unindex. dbLive is the Seq
// under which index.db's live bucket has it, in that Seq's chunk (0: not
// there, so any older entry of it is in ids).
type ckItem struct {
	id     string
	e      dbEntry
	gone   bool
	fresh  bool
	dbLive uint64
	ent    *entry // the entry snapshot; nil when read from index.db
}

// liveSeq is the Seq under which index.db's live bucket has the patch once
// the snapshot is written, or 0.
func (it *ckItem) liveSeq() uint64 {
	if !it.gone && it.e.live() {
		return it.e.seq
	}
	return 0
}

// tomb is the tombstone of an expired patch.
type tomb struct {
	id string
	at int64
}

// The buckets a checkpoint writes, by number (kv.bucket): the state
// buckets follow bkState, in the order of States.
const (
	bkMeta = iota
	bkIDs
	bkSeq
	bkFin
	bkLive
	bkExpired
	bkSegRefs
	bkDropped
	bkState
)

// bkOfState is the number of the bucket of the patches in st.
func bkOfState(st State) int { return bkState + int(stateCode(st)) - 1 }

// writeCheckpoint writes the changed entries and the checkpoint's record in
// one bbolt transaction (fsynced at its commit unless NoSync). Each
// bucket's keys are written in their order: bbolt splits nodes only at
// commit, so keys put in random order into one node cost a copy each.
func writeCheckpoint(db *bolt.DB, items []*ckItem, tombs []tomb, m ckMeta) error {
	slices.SortFunc(tombs, func(a, b tomb) int { return strings.Compare(a.id, b.id) })
	return db.Update(func(tx *bolt.Tx) error {
		names := [][]byte{bMeta, bIDs, bSeq, bFin, bLive, bExpired, bSegRefs, bDropped}
		for _, st := range States() {
			names = append(names, bState(st))
		}
		bk := make([]*bolt.Bucket, len(names))
		for i, name := range names {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			b.FillPercent = 0.9
			bk[i] = b
		}
		ids, live := bk[bkIDs], bk[bkLive]
		for _, t := range tombs {
			if err := bk[bkExpired].Put([]byte(t.id), binary.BigEndian.AppendUint64(nil, uint64(t.at))); err != nil {
				return err
			}
		}
		// By bucket, then key, ids too. A patch that is not live has its entry
		// and at most four keys (seq, state, finished and reverted at), a live
		// one a place in its chunk, and as many to remove.
		dels := make([]kv, 0, len(items))
		puts := make([]kv, 0, len(items))
		refs := map[uint32]int64{} // change of each segment's count
		// The chunks of bLive read or begun, by key; changed ones are
		// written at the end.
		type chunk struct {
			recs    []liveRec
			changed bool
		}
		chunks := map[uint64]*chunk{}
		chunkAt := func(key uint64) (*chunk, error) {
			if c := chunks[key]; c != nil {
				return c, nil
			}
			c := &chunk{}
			if v := live.Get(seqKey(key)); v != nil {
				recs, err := decodeChunk(v)
				if err != nil {
					return nil, fmt.Errorf("live index chunk %d: %w", key, err)
				}
				c.recs = recs
			}
			chunks[key] = c
			return c, nil
		}
		for _, it := range items {
			isLive := !it.gone && it.e.live()
			// What index.db has of the patch: its live entry, or its
			// entry in ids, or nothing.
			var old dbEntry
			had, inIDs := false, false
			if it.dbLive != 0 {
				c, err := chunkAt(chunkOf(it.dbLive))
				if err != nil {
					return err
				}
				// Taken out; put back below if it is still live.
				for i, r := range c.recs {
					if r.seq == it.dbLive && r.id == it.id {
						if old, err = r.entry(); err != nil {
							return fmt.Errorf("live index entry of %s: %w", it.id, err)
						}
						had = true
						c.recs = slices.Delete(c.recs, i, i+1)
						c.changed = true
						break
					}
				}
			}
			if !had && !it.fresh {
				if v := ids.Get([]byte(it.id)); v != nil {
					e, err := decodeEntry(v)
					if err != nil {
						return fmt.Errorf("index entry of %s: %w", it.id, err)
					}
					old, had, inIDs = e, true, true
				}
			}
			if had {
				for _, n := range old.segs() {
					refs[n]--
				}
			}
			if inIDs {
				if it.gone || isLive {
					// Its keys in ids, seq, state/<s> and fin go.
					dels = append(dels, kv{bkIDs, []byte(it.id), nil})
					dels = unindex(dels, old, dbEntry{})
				} else {
					dels = unindex(dels, old, it.e)
				}
			}
			if it.gone {
				continue
			}
			if stateCode(it.e.state) == 0 {
				return fmt.Errorf("index entry of %s: unknown state %q", it.id, it.e.state)
			}
			for _, n := range it.e.segs() {
				refs[n]++
			}
			if isLive {
				c, err := chunkAt(chunkOf(it.e.seq))
				if err != nil {
					return err
				}
				c.recs = append(c.recs, liveRec{seq: it.e.seq, id: it.id, raw: appendLive(it.id, &it.e)})
				c.changed = true
				continue
			}
			k := seqKey(it.e.seq)
			id := []byte(it.id)
			puts = append(puts, kv{bkIDs, id, it.e.encode()}, kv{bkSeq, k, id}, kv{bkOfState(it.e.state), k, id})
			if at := it.e.finished; at != 0 {
				puts = append(puts, kv{bkFin, finKey(at, it.e.seq), id})
			}
			if at := it.e.reverted; at != 0 {
				puts = append(puts, kv{bkFin, finKey(at, it.e.seq), id})
			}
		}
		for key, c := range chunks {
			switch {
			case !c.changed:
			case len(c.recs) == 0:
				dels = append(dels, kv{bkLive, seqKey(key), nil})
			default:
				slices.SortFunc(c.recs, func(a, b liveRec) int { return cmpSeq(a.seq, b.seq) })
				puts = append(puts, kv{bkLive, seqKey(key), encodeChunk(c.recs)})
			}
		}
		for n, d := range refs {
			if d == 0 {
				continue
			}
			if k, v := countAfter(bk[bkSegRefs], n, d); v != nil {
				puts = append(puts, kv{bkSegRefs, k, v})
			} else {
				dels = append(dels, kv{bkSegRefs, k, nil})
			}
		}
		sortKV(dels)
		for _, d := range dels {
			if err := bk[d.bucket].Delete(d.k); err != nil {
				return err
			}
		}
		sortKV(puts)
		for _, p := range puts {
			if err := bk[p.bucket].Put(p.k, p.v); err != nil {
				return err
			}
		}
		if err := bk[bkMeta].Put([]byte("v"), []byte{indexVersion}); err != nil {
			return err
		}
		return bk[bkMeta].Put([]byte("ck"), m.encode())
	})
}

// kv is a key of a bucket (bkIDs, ...), and its value for a put.
type kv struct {
	bucket int
	k, v   []byte
}

func sortKV(s []kv) {
	slices.SortFunc(s, func(a, b kv) int {
		if c := cmpInt(a.bucket, b.bucket); c != 0 {
			return c
		}
		return bytes.Compare(a.k, b.k)
	})
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unindex adds the keys of a patch's previous entry that its new one does
// not have (or, for a patch gone, all of them) to dels.
func unindex(dels []kv, old, cur dbEntry) []kv {
	k := seqKey(old.seq)
	if old.seq != cur.seq {
		dels = append(dels, kv{bkSeq, k, nil})
	}
	if old.seq != cur.seq || old.state != cur.state {
		dels = append(dels, kv{bkOfState(old.state), k, nil})
	}
	for _, at := range [2]int64{old.finished, old.reverted} {
		if at == 0 || old.seq == cur.seq && (at == cur.finished || at == cur.reverted) {
			continue
		}
		dels = append(dels, kv{bkFin, finKey(at, old.seq), nil})
	}
	return dels
}

// readCkMeta reads the checkpoint's record and index.db's format (this
// one, or 2 or 3 to migrate); why says why there is none (a new index.db, or
// one of an unknown format).
func readCkMeta(tx *bolt.Tx) (m ckMeta, version byte, why string) {
	b := tx.Bucket(bMeta)
	if b == nil {
		return m, 0, "it holds no checkpoint"
	}
	v := b.Get([]byte("v"))
	if len(v) != 1 || v[0] < 2 || v[0] > indexVersion {
		return m, 0, fmt.Sprintf("its format version %v is not %d", v, indexVersion)
	}
	m, err := decodeCkMeta(b.Get([]byte("ck")))
	if err != nil {
		return m, 0, "its checkpoint record is damaged"
	}
	return m, v[0], ""
}

// migrate brings an index.db of format 2 or 3 to this one, a transaction
// a step: the work is in proportion to the live patches (and format 2's
// files), not to the history.
func migrate(db *bolt.DB, version byte) error {
	if version == 2 {
		if err := migrateV2(db); err != nil {
			return err
		}
	}
	if version <= 3 {
		if err := migrateV3(db); err != nil {
			return err
		}
	}
	return migrateV4(db)
}

// migrateV2 brings an index.db of format 2 to format 3: each live patch's
// entry (in ids, listed in state/queued or state/applying, with a key in
// seq) moves to the live bucket, a key each, and the files bucket, which
// nothing read, goes.
func migrateV2(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		live, err := tx.CreateBucketIfNotExists(bLiveV3)
		if err != nil {
			return err
		}
		ids, seq, fin := tx.Bucket(bIDs), tx.Bucket(bSeq), tx.Bucket(bFin)
		for _, st := range []State{StateQueued, StateApplying} {
			b := tx.Bucket(bState(st))
			if b == nil {
				continue
			}
			var ks, vs [][]byte
			if err := b.ForEach(func(k, v []byte) error {
				ks, vs = append(ks, bytes.Clone(k)), append(vs, bytes.Clone(v))
				return nil
			}); err != nil {
				return err
			}
			for i, k := range ks {
				var raw []byte
				if ids != nil {
					raw = ids.Get(vs[i])
				}
				if raw == nil {
					return fmt.Errorf("index lists %s as %s but has no entry for it", vs[i], st)
				}
				e, err := decodeEntry(raw)
				if err != nil {
					return fmt.Errorf("index entry of %s: %w", vs[i], err)
				}
				if err := live.Put(k, appendLive(string(vs[i]), &e)); err != nil {
					return err
				}
				if err := ids.Delete(vs[i]); err != nil {
					return err
				}
				if err := errors.Join(b.Delete(k), deleteIn(seq, k)); err != nil {
					return err
				}
				for _, at := range [2]int64{e.finished, e.reverted} {
					if at != 0 {
						if err := deleteIn(fin, finKey(at, e.seq)); err != nil {
							return err
						}
					}
				}
			}
		}
		if tx.Bucket([]byte("files")) != nil {
			if err := tx.DeleteBucket([]byte("files")); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("v"), []byte{3})
	})
}

// migrateV3 brings an index.db of format 3 to format 4: the live bucket's
// entries, a key each, go into chunks (bLive). An entry that does not
// decode, or not under its own Seq, fails it (the index is then rebuilt).
func migrateV3(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		live, err := tx.CreateBucketIfNotExists(bLive)
		if err != nil {
			return err
		}
		chunks := map[uint64][]liveRec{}
		if old := tx.Bucket(bLiveV3); old != nil {
			err := old.ForEach(func(k, v []byte) error {
				id, e, err := decodeLive(v)
				if err != nil || len(k) != 8 || binary.BigEndian.Uint64(k) != e.seq {
					return fmt.Errorf("live index entry under key %x: damaged", k)
				}
				key := chunkOf(e.seq)
				chunks[key] = append(chunks[key], liveRec{seq: e.seq, id: id, raw: bytes.Clone(v)})
				return nil
			})
			if err != nil {
				return err
			}
			if err := tx.DeleteBucket(bLiveV3); err != nil {
				return err
			}
		}
		for key, recs := range chunks {
			if err := live.Put(seqKey(key), encodeChunk(recs)); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("v"), []byte{4})
	})
}

// countAfter is segment n's count of referring patches in sr (bSegRefs)
// changed by d: its key, and its value, nil when no patch refers to it
// any more (then the key goes).
func countAfter(sr *bolt.Bucket, n uint32, d int64) (k, v []byte) {
	k = binary.BigEndian.AppendUint32(nil, n)
	c := int64(0)
	if old := sr.Get(k); len(old) == 8 {
		c = int64(binary.BigEndian.Uint64(old))
	}
	if c += d; c > 0 {
		return k, binary.BigEndian.AppendUint64(nil, uint64(c))
	}
	return k, nil
}

// migrateV4 brings an index.db of format 4 to format 5. The builds that
// wrote formats 3 and 4 lost track of a live entry when a failed patch
// was sent again (a new attempt, under a new Seq) before the checkpoint
// after its failure: the earlier attempt's entry, queued as of the
// checkpoint before, stayed in the live chunks, and a later Open brought
// it back into the queue, to be applied again with its old body. Each
// live entry whose id has a later one (live, or finished in ids) is such
// an entry: it goes, and so do its counts of the segments it refers to,
// which were never taken back. Work in proportion to the live patches.
func migrateV4(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		live := tx.Bucket(bLive)
		if live == nil {
			return tx.Bucket(bMeta).Put([]byte("v"), []byte{indexVersion})
		}
		chunks := map[uint64][]liveRec{}
		newest := map[string]uint64{}
		err := live.ForEach(func(k, v []byte) error {
			recs, err := decodeChunk(bytes.Clone(v))
			if err != nil || len(k) != 8 {
				return fmt.Errorf("live index chunk under key %x: damaged", k)
			}
			chunks[binary.BigEndian.Uint64(k)] = recs
			for _, r := range recs {
				newest[r.id] = max(newest[r.id], r.seq)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if ids := tx.Bucket(bIDs); ids != nil {
			for id, seq := range newest {
				v := ids.Get([]byte(id))
				if v == nil {
					continue
				}
				e, err := decodeEntry(v)
				if err != nil {
					return fmt.Errorf("index entry of %s: %w", id, err)
				}
				newest[id] = max(seq, e.seq)
			}
		}
		refs := map[uint32]int64{}
		for key, recs := range chunks {
			keep := recs[:0]
			for _, r := range recs {
				if r.seq >= newest[r.id] {
					keep = append(keep, r)
					continue
				}
				e, err := r.entry()
				if err != nil {
					return fmt.Errorf("live index entry of %s (Seq %d): %w", r.id, r.seq, err)
				}
				for _, n := range e.segs() {
					refs[n]--
				}
			}
			switch {
			case len(keep) == len(recs):
			case len(keep) == 0:
				err = live.Delete(seqKey(key))
			default:
				err = live.Put(seqKey(key), encodeChunk(keep))
			}
			if err != nil {
				return err
			}
		}
		if len(refs) > 0 {
			sr := tx.Bucket(bSegRefs)
			if sr == nil {
				return errors.New("live index entries refer to segments, and there are no counts of them")
			}
			for n, d := range refs {
				if k, v := countAfter(sr, n, d); v != nil {
					err = sr.Put(k, v)
				} else {
					err = sr.Delete(k)
				}
				if err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bMeta).Put([]byte("v"), []byte{indexVersion})
	})
}

// deleteIn deletes k from b, if there is b.
func deleteIn(b *bolt.Bucket, k []byte) error {
	if b == nil {
		return nil
	}
	return b.Delete(k)
}

// dbGet reads a patch's entry from index.db.
func dbGet(db *bolt.DB, id string) (e dbEntry, ok bool, err error) {
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIDs)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		e, err = decodeEntry(v)
		if err != nil {
			return fmt.Errorf("index entry of %s: %w", id, err)
		}
		return nil
	})
	return e, ok, err
}
