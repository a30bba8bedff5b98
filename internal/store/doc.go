// Package store is patchd's durable patch store and event log.
//
// It keeps the promise "acknowledged means durable": Submit and Update
// return success only after the record is written to the journal and the
// journal is fsynced, and the journal's directory entry was fsynced when the
// journal was created. Whatever was acknowledged is back after a crash,
// kill -9 or power loss.
//
// # Layout
//
// Open(dir) owns the directory (the daemon passes <state>/queue):
//
//	dir/LOCK                 flock held while the store is open (one opener)
//	dir/seg/00000001.jnl     the journal, append-only, the source of truth,
//	dir/seg/00000002.jnl     in segments; the highest-numbered one is the
//	...                      active one, the only one written to
//	dir/index.db             the index's checkpoint (go.etcd.io/bbolt)
//	dir/index.db.bad         an index.db Open could not trust, kept for
//	                         inspection (one, the latest)
//	dir/blobs/<id>/<name>    large content (file backups), one file each;
//	                         small content travels inline in the journal
//
// A journal from before segments, dir/journal (with no dir/seg), is moved
// to dir/seg/00000001.jnl at Open (a rename, then both directories
// fsynced); its format is the segments' format. A dir/journal.compact a
// crashed compaction of that time left behind is removed.
//
// Ids and names that are not plain file names are percent-escaped in blob
// paths, so no id can reach outside dir/blobs.
//
// # Journal format
//
// Each segment starts with the 8-byte file header "patchdJ1", then records.
// All integers are little-endian.
//
//	record  = magic u32 (0x31526470, "pdR1") | length u32 | crc u32 | payload
//	payload = kind u8 | seq u64 | metaLen u32 | meta | body
//
// crc is CRC-32C (Castagnoli) of the length field followed by the payload,
// so a damaged length is caught as well. meta is JSON of the patch record
// (see diskPatch: short keys, times as Unix nanoseconds). kind 1 (put)
// carries a whole patch and its submitted body; kind 2 (update) carries the
// whole new patch record and, from UpdateBlobs, inline blobs as its body
// (the meta's "ib" member names them and gives their lengths, in order);
// kind 3 (retry) carries a new attempt at a failed patch: its whole record
// (the earlier attempts in "at") with the new body, and its new seq; kind
// 4 (expire) removes patches (see Retention): its meta is
// {"at": Unix nanoseconds, "ids": [...]}, it has no body, and its seq is
// the highest Seq among the patches it names.
// Replay applies records in journal order (segment by segment): a put creates a patch, an update
// replaces its record, a retry replaces its record and body and moves it
// to its new seq (dropping its inline blobs), an expire removes its
// patches and leaves their tombstones; an update with inline blobs replaces the patch's
// inline blobs, and an update to applying without any drops them. Bodies
// and blobs are never held in memory after their record is written: the
// index keeps where they are (segment and offset) and Body and Blob read
// them back with pread, through a few segment files kept open (at most 8).
// Diffs are not held in memory either: the index keeps where the newest
// record's "diff" string is, and Get, List, Next and Update read it back.
//
// # Segments
//
// After a batch leaves the active segment at Options.SegmentBytes or more
// (64 MiB by default), the committer starts the next one: it creates the
// new file with its header, fsyncs it and the directory, then cuts the
// zeros written ahead off the old one (truncate, fsync). A new segment is
// durable before any record is acknowledged in it. If the new segment
// cannot be created, writing goes on in the old one and the next batch
// tries again. Open refuses a gap in the segments' numbers, naming the
// missing segment: the patches stored in it would otherwise be lost
// without a word.
//
// # Space written ahead
//
// The committer keeps the active segment zeroed up to a multiple of 1 MiB past the
// last record: a batch then overwrites space that is already allocated
// and inside the file's size, and fdatasync makes it durable without the
// metadata commit that growing the file costs every fsync (about half of
// the time and CPU of a commit on ext4). Only the batch that grows the
// file pays a full fsync. Replay ends at the first zero header when only
// zeros follow, and keeps them; a record torn inside them is a torn tail.
// When the disk has no room for the zeros, or would keep less than 2 MiB
// free besides, the records are written alone.
// The zeros are also a reserve: when the disk fills up, records keep being
// acknowledged, durably, until they have used them (up to 1 MiB), and
// only then does Submit report the full disk.
//
// # Index and checkpoint
//
// The store does not hold its history in memory. index.db (bbolt, its
// freelist synced so that opening it reads no more than its meta pages)
// holds every patch as of its watermark, the end of the last record it
// took in. Its buckets:
//
//	meta          "v": format version (4); "ck": the watermark (segment,
//	              offset), where the last record taken in starts and its
//	              CRC, the next Seq, the last event's number there, the
//	              first segment the index refers to, counts by state
//	ids           id → entry, for each patch that is not live (applied,
//	              failed, reverted): seq, state, received/finished/
//	              reverted at, where the newest record's meta is (segment,
//	              offset, length, CRC-32C), where the body and the inline
//	              blobs are (with their names and lengths), the paths of
//	              the files the patch changed
//	seq           seq (8 bytes big-endian) → id, those patches by arrival
//	state/<s>     seq → id, those in state s (a filtered page of List
//	              reads a page's worth)
//	fin           finished-or-reverted at (8 bytes) + seq → id
//	              (FinishedSince)
//	live-chunks   the live patches (queued, applying), and only there,
//	              in chunks of 256 Seqs: the range's first seq → its
//	              live patches in Seq order, each its id and entry. A
//	              patch's chunk follows from its Seq; under a backlog a
//	              checkpoint puts one key per 256 new patches, appended
//	              at the bucket's end (every live patch is in memory too,
//	              so lookups and List need nothing else)
//	segrefs       segment → how many patches refer to it; dropped-segments:
//	              the segments removed since none did (see Retention)
//	tombstones    id → when it expired (see Retention)
//
// The patch itself is not copied into index.db: Get and List read its
// newest record's meta back from its segment (one pread) and check its
// CRC-32C, so damage there is reported (the patch is logged and left
// out), never returned. In memory are only the overlay (the live patches,
// queued and applying, which the worker's queue needs, and every patch
// changed since the last checkpoint) and the counts by state. Readers take
// the overlay's entry where it has one and index.db's otherwise, and never
// read index.db with the store's mutex held.
//
// The checkpointer writes every Options.CheckpointInterval (1 s) when
// anything changed, at once when 20,000 patches did, and at Close. Each
// change leaves a snapshot of its entry (taken at the end of the
// committer's batch); under the mutex the checkpointer only takes the set
// of snapshots, putting an empty one in its place, and the watermark,
// then writes them in one bbolt transaction (fsynced at its commit)
// without the mutex, then drops from memory the entries not changed
// since and not live. Intake never waits for it. A
// checkpoint that fails is logged and tried again; the journal has
// everything meanwhile, and Open replays more of it.
//
// Open reads index.db's meta and checks it against the segments: the
// watermark's segment is there and long enough, and the whole last
// record the checkpoint took in is at its place with its CRC. Then it
// replays only the records after the watermark (usually none after a
// clean Close), and reads the live patches from their chunks. The work
// does not grow with the history. An index.db of format 2 (the live
// patches in ids, and a files bucket nothing read), 3 (a key per live
// patch) or 4 (chunks, perhaps with a failed patch's earlier attempt
// left among the live entries) is moved to format 5 in place, a
// transaction a step, in proportion to its live patches. An index.db
// that does not open, is of an unknown format, is shorter than its pages
// say (torn), faults when read, or whose watermark does not match the
// segments (another journal, an older copy of it, a last record damaged)
// is logged with the reason, moved aside to index.db.bad, and the index is
// rebuilt by replaying every segment: the one path whose work grows with
// the history (logged as such), writing a checkpoint every 20,000 patches
// so that memory stays bounded. An older copy of index.db (stale, but
// matching the segments) is simply replayed forward from its watermark.
//
// A segment the index needs and that is not there fails Open with an
// error naming it, rather than losing the patches stored in it: a gap in
// the segments' numbers, a first segment after the one index.db's meta
// names as the first it refers to, a watermark in a segment after the
// last one there. Only index.db tells which segments are needed; without
// it (rebuilt), segments missing before the first one there are logged,
// and the patches stored only in them are not in the rebuilt index.
// Damage inside a segment that index.db has already taken in is not
// looked for at Open (that would read the history): it is found when the
// record is read (CRC-32C of the meta), and the patch is logged and left
// out of Get and List; a live patch whose record is damaged is left out of
// the queue, logged.
//
// # Damage
//
// On Open the segments after the watermark are scanned. A record that is short, has a bad
// magic, length or CRC ends the scan at that point. If no valid record
// follows, it is a torn tail (a write cut by a crash): in the active
// segment the file is truncated there and fsynced; that record was never
// acknowledged because it was never fsynced. If valid records do follow,
// the damage is in the middle (the disk corrupted acknowledged data): the
// bad bytes are skipped and the later records kept. The segment is not
// rewritten (records are found by their offsets, and the damage stays
// there to be inspected); if it is the active one, a new segment is
// started for the records that follow. Both cases are logged on
// Options.Logger. A record with a valid CRC that
// cannot be decoded (a newer format) fails Open rather than being dropped.
//
// # Group commit
//
// Submit and Update encode their record in the caller's goroutine and queue
// it. One committer goroutine takes every record queued at that moment,
// assigns the Seq of new patches, writes them with one write and one fsync,
// applies them to the in-memory index and releases every waiter. While an
// fsync runs, the next batch gathers, so throughput grows with the number
// of concurrent callers rather than being capped at one record per fsync.
// Under steady load the committer waits a moment (a quarter of the last
// fsync time, at most 2 ms, ending as soon as they are back) for the
// callers it just released, so that batches hold all callers rather than
// alternating halves. And when many records have been outstanding at once
// lately (a decaying maximum, forgotten after 10 ms without a batch), it
// waits up to 1 ms for half that many to be pending: on a fast disk the
// fsync ends before most callers are back, and without that wait batches
// under 64 clients collapsed to one or two records, each paying the
// syscalls and wakeups of a batch of its own. A lone caller never has
// more than its own record outstanding and is never made to wait.
//
// If a caller's context ends before the committer took its record, the
// record is withdrawn and never written. If it ends after, the caller gets
// the context's error but the record may still land; a retried Submit with
// the same id and body is then answered from the stored patch.
//
// The in-memory index only ever reflects durable records: a patch becomes
// visible to Get, List and Next once its batch is fsynced.
//
// # Failures
//
// A failed write or fsync truncates the active segment back to the end of the last
// durable batch and fsyncs that, then fails every record of the batch.
// ENOSPC, EDQUOT, EROFS, EIO and EFBIG are reported as ErrUnavailable,
// naming the cause ("store unavailable: write queue/seg/00000001.jnl: no
// space left on device"). The store keeps running: later submissions succeed once the disk
// recovers. A patch left applying by a failed update is handed out by Next
// again, so that the worker retries recording how it ended. If even the
// truncation fails, nothing more is written until a later attempt to
// truncate succeeds, so a later batch can never land after bytes of
// uncertain fate.
//
// # Garbage
//
// Patches are never rewritten: superseded update records, and the
// records of expired patches, stay in their segments. Open does not
// compact the journal (that was work in proportion to the whole history
// at every start).
//
// # Retention
//
// Prune removes the patches a policy (an age, a count) selects, oldest
// first, except those queued or applying and those a revert of a file
// needs: for each file, the newest patch that changed it and, if that one
// was reverted or failed, every older one back to the newest still
// applied. Each batch of up to 1024 expired patches is one expire record,
// written through the committer like any other: once Prune has it back
// the expiry is durable, the patches are gone from the index and their
// blob directories (dir/blobs/<id>) are removed. The index keeps a
// tombstone per expired id (id → when it expired), replayed on Open,
// so that Expired can tell an expired id from
// one never seen, and a submission of an expired id is refused
// (ErrExpired). Seqs of expired patches are never given again: Open
// starts numbering after the highest expire record's seq too.
//
// The journal's space is reclaimed a segment at a time: index.db counts,
// per segment, the patches whose entry refers to it (its newest record's
// meta, its body, its inline blobs; bucket segrefs). After a checkpoint
// that removed expired patches, every segment before the watermark's with
// no patch referring to it is listed as dropped in index.db (bucket
// dropped-segments), then removed. Records written since the checkpoint lie at or
// after the watermark, and a patch changed since refers to its index.db
// entry's segments or to later ones, so nothing refers to a dropped
// segment. Open accepts the gap a dropped segment leaves, and only that
// one. A segment that still holds one kept patch (the newest patch of a
// file, say) stays whole: copying such patches forward, so that one cannot
// keep a 64 MiB segment, is not done yet. A rebuild of index.db (lost or
// damaged) reads the segments there are: a tombstone whose expire record
// was in a dropped segment is then not known, and a patch it expired that
// shares a segment with a kept one comes back.
//
// Prune looks
// at the patches a chunk at a time under the store's mutex, newest first,
// and checks each candidate again under the mutex before writing its
// record. A crash between the record and the removal of the blob
// directories leaves those directories behind, until the next Prune (not
// a dry run) removes them: it looks for directories of expired ids in
// dir/blobs.
//
// Each expired patch is an event, "patch.expired", with the state it had
// (one event per patch, in the order the patches expired).
//
// # Events
//
// Every state change is an event, numbered from 1 in the order the
// committer commits the records (event_id; the patch's own number is its
// seq). After each batch is durable and its callers released, the
// committer numbers its events, appends them to the event log if
// Options.EventsPath is set, and hands them to the in-process hub, for
// example
//
//	{"event_id":12,"time":"…","event":"patch.applied","id":"P1","seq":7,"state":"applied"}
//
// Event lines are not fsynced one by one (the journal is the record of
// truth); the file is fsynced on Close. A failed event write is logged, once
// per outage, and never fails the patch.
//
// With Options.EventsMaxBytes, the event log is rotated once it passes that
// size, after the batch that passed it: the committer renames it after its
// last event (events.jsonl to events-000000001234.jsonl) and opens a new
// one, a rename and an open under a lock that replays hold only while they
// open their files. In the background, every rotated file but the newest
// is gzip-compressed (written as .gz.tmp, synced, renamed, the original
// removed) and those beyond Options.EventsBackups (5) are deleted, oldest
// first. The newest stays as written so that a subscriber resuming
// shortly before the rotation (the common case) reads it back from its end
// as it reads the current file, instead of decompressing it from its
// start; and the compression never delays the committer. A stop cuts a
// compression short; the next Open does it again.
//
// Numbering is kept by the journal, not by the event log: which records
// are events is decided by the records alone (a put, a retry, an expired
// patch, an update that changes the state), index.db's meta keeps the
// last event's number at its watermark, and Open counts the events of the
// records it replays after it. So numbers go on after a restart even when
// the event log lost its last lines (a power failure before the page
// cache reached the disk, a full disk) or there is none. An event log
// numbered further than that (written by a patchd that numbered from its
// log) keeps its numbers going: the higher of the two is taken. A line a
// crash cut short is skipped, and the next write starts a line of its own.
// When events.jsonl has no numbered line (a rotation just emptied it),
// the newest rotated file's name gives its last number, taken as above.
//
// Subscribe follows the events from a given number on: the latest 1024 are
// kept in memory; older ones (up to 100,000 back) are read from the event
// log's files: the one holding the first event asked for, found by its
// name, read back from its end (or, compressed, forward from its start),
// then forward through the newer ones. A start before the oldest event
// the files keep (the older ones were deleted) is refused at once. The
// committer never waits for a subscriber: each has a queue of at most 4096
// events that its own goroutine drains into its channel, and a subscriber
// whose queue is full is ended with ErrSlowSubscriber after reading what
// came before; it resubscribes after the last event it read. A start the
// store cannot serve (too old, not in the log, after the last event) is
// ErrEventsLost: read the state again and subscribe after LastEventID.
package store
