package store

import (
	"encoding/json"
	"fmt"

	"github.com/patchd/patchd/internal/jsonscan"
)

// A patch's diff can be as large as the files it changed, and the index
// keeps every patch for good, so the index does not keep diffs: it keeps
// where the newest record has it in the journal (the raw JSON string inside
// the record's meta), and readers fetch it with pread. A diff whose place
// cannot be found (a record not written by encodeMeta) stays in memory.

// diffRef is where an entry's diff is in the journal; n == 0 means the
// entry holds its diff itself (cold.Diff, possibly "").
type diffRef struct {
	at ref
	n  int64
}

// span is where a value is in a record's meta; the zero span is unknown.
type span struct{ start, end int }

// setDiff records where the diff of e's newest record is, given the
// record's meta, the meta's offset in the journal and, if the decoder
// found it, where the diff is in the meta; and drops the diff from memory
// if it was found there.
func (e *entry) setDiff(metaAt ref, meta []byte, at span) {
	var d diffRef
	if e.rest().Diff != "" {
		start, end := at.start, at.end
		if end == 0 {
			start, end = -1, -1
			jsonscan.ObjectIndex(meta, func(key []byte, s, en int) bool {
				if string(key) == "diff" {
					start, end = s, en // the last one, as the decoders take it
				}
				return true
			})
		}
		if start >= 0 && meta[start] == '"' {
			d = diffRef{at: ref{metaAt.seg, metaAt.off + int64(start)}, n: int64(end - start)}
		}
	}
	if d == (diffRef{}) && e.rest().diff == (diffRef{}) {
		return // no diff, in memory or in the journal
	}
	c := e.coldCopy()
	c.diff = d
	if d != (diffRef{}) {
		c.Diff = ""
	}
	e.setCold(c)
}

// metaOffset is where a record's meta starts, from the record's start.
const metaOffset = recHeaderLen + payloadFixed

// readDiff reads a diff from the journal.
func (s *Store) readDiff(id string, d diffRef) (string, error) {
	raw, err := s.read(d.at, d.n, "diff of "+id)
	if err != nil {
		return "", err
	}
	if s, ok := jsonscan.String(raw); ok {
		return s, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return "", fmt.Errorf("diff of %s in %s: %w", id, s.segLabel(d.at.seg), err)
	}
	return str, nil
}

// withDiff returns p with its diff read back from the journal. Call it
// without s.mu.
func (s *Store) withDiff(p Patch, d diffRef) (Patch, error) {
	if d.n == 0 {
		return p, nil
	}
	diff, err := s.readDiff(p.ID, d)
	if err != nil {
		return p, err
	}
	p.Diff = diff
	return p, nil
}

// loaded is withDiff for readers that cannot return an error (Get, List):
// a diff that cannot be read is logged and left empty.
func (s *Store) loaded(p Patch, d diffRef) Patch {
	q, err := s.withDiff(p, d)
	if err != nil {
		s.log.Error("read a patch's diff from the journal", "id", p.ID, "err", err)
		return p
	}
	return q
}
