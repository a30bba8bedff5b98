package alert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
)

// message is one notification to deliver: what the outbox file keeps.
type message struct {
	Key      string    `json:"key"` // "<event_id>/<receiver>": one per receiver per event
	Receiver string    `json:"rcv"` // config.Notify.ID
	EventID  uint64    `json:"event_id"`
	Event    string    `json:"event"`
	Patch    string    `json:"patch"`
	Created  time.Time `json:"created"`
	Body     []byte    `json:"body"` // the JSON to POST, as rendered when the event came
}

// record is one line of the outbox file.
type record struct {
	Op      string    `json:"op"` // "add", "done", "cursor"
	EventID uint64    `json:"event_id,omitempty"`
	Msgs    []message `json:"msgs,omitempty"`
	Key     string    `json:"key,omitempty"`
	Result  string    `json:"result,omitempty"` // done: delivered, gave_up, dropped, removed
}

// journal is the outbox file: an append-only list of records, fsynced at
// each add and done, rewritten (atomically) with only what is pending
// once it holds mostly finished messages. The last event it has seen (its
// cursor) is the largest event_id of its records: an event's messages are
// added in one line, so a torn last line loses both, and the event is read
// again at the next start.
type journal struct {
	path    string
	f       *os.File
	lines   int // records in the file
	cursor  uint64
	pending []*message // oldest first
}

// openJournal reads the outbox file at path (creating it). A torn last
// line is cut off; a damaged line elsewhere is skipped and counted in bad.
// found is false when there was no file: nothing was ever enqueued.
func openJournal(path string) (j *journal, found bool, bad int, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, 0, fmt.Errorf("notify outbox: %w", err)
	}
	j = &journal{path: path}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, false, 0, fmt.Errorf("notify outbox: %w", err)
	default:
		found = true
	}
	byKey := map[string]*message{}
	var order []*message
	good := 0
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			break // torn: cut below
		}
		line := data[off : off+end]
		off += end + 1
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			bad++
			good = off
			continue
		}
		good = off
		j.lines++
		j.cursor = max(j.cursor, r.EventID)
		switch r.Op {
		case "add":
			for i := range r.Msgs {
				m := r.Msgs[i]
				if byKey[m.Key] == nil {
					byKey[m.Key] = &m
					order = append(order, &m)
				}
			}
		case "done":
			delete(byKey, r.Key)
		}
	}
	for _, m := range order {
		if byKey[m.Key] == m {
			j.pending = append(j.pending, m)
		}
	}
	if found && good < len(data) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, false, 0, fmt.Errorf("notify outbox: cut its torn end: %w", err)
		}
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return nil, false, 0, fmt.Errorf("notify outbox: %w", err)
	}
	if !found {
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			j.f.Close()
			return nil, false, 0, err
		}
	}
	return j, found, bad, nil
}

// append writes records as lines, then fsyncs when durable.
func (j *journal) append(durable bool, rs ...record) error {
	var buf bytes.Buffer
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		j.cursor = max(j.cursor, r.EventID)
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("notify outbox: write: %w", err)
	}
	j.lines += len(rs)
	if durable {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("notify outbox: sync: %w", err)
		}
	}
	return nil
}

// add records the messages of event eventID (none: only the cursor moves,
// which need not be durable: an event read again that makes no message
// makes none again).
func (j *journal) add(eventID uint64, msgs []*message) error {
	if len(msgs) == 0 {
		j.cursor = max(j.cursor, eventID)
		return nil
	}
	r := record{Op: "add", EventID: eventID}
	for _, m := range msgs {
		r.Msgs = append(r.Msgs, *m)
	}
	if err := j.append(true, r); err != nil {
		return err
	}
	j.pending = append(j.pending, msgs...)
	return nil
}

// done records that a message is finished: result is delivered, gave_up,
// dropped or removed.
func (j *journal) done(m *message, result string) error {
	for i, p := range j.pending {
		if p == m {
			j.pending = append(j.pending[:i], j.pending[i+1:]...)
			break
		}
	}
	if err := j.append(true, record{Op: "done", Key: m.Key, Result: result}); err != nil {
		return err
	}
	if j.lines > 1024 && j.lines > 4*(len(j.pending)+1) {
		return j.compact()
	}
	return nil
}

// compact rewrites the file with the cursor and the pending messages only,
// atomically (a synced temporary file renamed over it).
func (j *journal) compact() error {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc := json.NewEncoder(w)
	lines := 1
	if err := enc.Encode(record{Op: "cursor", EventID: j.cursor}); err != nil {
		return err
	}
	for _, m := range j.pending {
		if err := enc.Encode(record{Op: "add", EventID: m.EventID, Msgs: []message{*m}}); err != nil {
			return err
		}
		lines++
	}
	w.Flush()
	if err := fsutil.WriteFileAtomic(j.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("notify outbox: compact: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("notify outbox: %w", err)
	}
	j.f.Close()
	j.f, j.lines = f, lines
	return nil
}

// close writes the cursor (durably) and closes the file.
func (j *journal) close() error {
	err := j.append(true, record{Op: "cursor", EventID: j.cursor})
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
