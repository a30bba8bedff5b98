package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Event is one state change of a patch: a line of the event log and what
// a Subscription delivers.
type Event struct {
	// EventID numbers events from 1 in the order their records were
	// committed; numbering continues after a restart (see doc.go, Events).
	EventID uint64    `json:"event_id"`
	Time    time.Time `json:"time"`
	Event   string    `json:"event"` // patch.submitted, patch.applying, patch.applied, patch.failed, patch.reverted, patch.requeued, patch.dropped, patch.resubmitted, patch.expired
	ID      string    `json:"id"`
	Seq     uint64    `json:"seq"` // the patch's Seq
	State   State     `json:"state"`
	Error   string    `json:"error,omitempty"`
	Code    string    `json:"code,omitempty"` // the failed patch's Code
}

// batchEvents returns the events of a committed batch, numbered from
// after+1, appended to evs.
func batchEvents(evs []Event, batch []*op, after uint64, now time.Time) []Event {
	now = now.UTC()
	for _, o := range batch {
		if o.expire != nil {
			evs, after = expireEvents(evs, o, after, now)
			continue
		}
		name := o.event
		if name == "" {
			name = eventName(o.prev, o.patch.State)
		}
		if name == "" {
			continue
		}
		after++
		evs = append(evs, Event{
			EventID: after, Time: now, Event: name, ID: o.patch.ID, Seq: o.patch.Seq,
			State: o.patch.State, Error: o.patch.Error, Code: o.patch.Code,
		})
	}
	return evs
}

// eventLog appends events after their records are durable, and rotates
// its file by size. Only the committer goroutine writes to it.
type eventLog struct {
	f       *os.File
	path    string
	log     *slog.Logger
	files   *eventFiles
	size    int64 // of f
	max     int64 // rotate at this size; 0: never
	buf     []byte
	failing bool // a write failed; log again only once it works
	// rotateFailing: a rotation failed; log again only once one works.
	rotateFailing bool
	// torn: the file does not end with a newline (a write a crash cut);
	// the next write starts a line of its own.
	torn bool
}

// openEventLog opens the event log for appending and returns the number
// of its last event: read from the current file's end, or, if that has
// none (new, just rotated, or written before events were numbered), the
// newest rotated file's name.
func openEventLog(path string, maxBytes int64, keep int, log *slog.Logger) (*eventLog, uint64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open event log: %w", err)
	}
	l := &eventLog{f: f, path: path, log: log, max: maxBytes, files: newEventFiles(path, keep, log)}
	last, torn, err := lastEvent(f)
	if err != nil {
		// Numbering cannot continue where it was; say so rather than fail
		// the start: the journal, not this file, is the record of truth.
		log.Error("event log unreadable; event numbers go on from the newest rotated one, or from 1", "path", path, "err", err)
	}
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
	l.torn = torn
	last = max(last, l.files.start())
	return l, last, nil
}

// maxTailScan bounds how far from its end Open looks into the event log
// for the last numbered event, so that opening costs the same whatever the
// history's length.
const maxTailScan = 1 << 20

// lastEvent returns the number of the last complete, numbered line of the
// event log (0 if the last complete event line has none), and whether the
// file ends without a newline.
func lastEvent(f *os.File) (last uint64, torn bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	size := fi.Size()
	if size == 0 {
		return 0, false, nil
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return 0, false, err
	}
	torn = b[0] != '\n'
	found := false
	err = scanBack(f, size, maxTailScan, func(line []byte, _ int64) bool {
		if e, ok := parseEventLine(line); ok {
			last, found = e.EventID, true
			return false
		}
		return true
	})
	if err == nil && !found && size > maxTailScan {
		err = fmt.Errorf("no event in its last %d bytes", maxTailScan)
	}
	return last, torn, err
}

// parseEventLine decodes one line of the event log; torn or foreign lines
// are not events.
func parseEventLine(line []byte) (Event, bool) {
	var e Event
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Event == "" {
		return Event{}, false
	}
	return e, true
}

// errScanLimit ends a backward scan that read its bound.
var errScanLimit = errors.New("scan limit reached")

// scanBack calls fn with each complete line of f's first size bytes (a
// trailing part without newline is not one), last first, with its offset,
// until fn returns false, the file's start, or more than limit bytes were
// read (errScanLimit).
func scanBack(f io.ReaderAt, size, limit int64, fn func(line []byte, off int64) bool) error {
	const chunk = 64 << 10
	var (
		buf  []byte // bytes from off to end, the unfinished line first
		off  = size
		read int64
	)
	// Drop a trailing part that is not a whole line.
	end := size
	for off > 0 {
		n := min(int64(chunk), off)
		if read+n > limit {
			return errScanLimit
		}
		off -= n
		read += n
		b := make([]byte, n, n+int64(len(buf)))
		if _, err := f.ReadAt(b, off); err != nil {
			return err
		}
		buf = append(b, buf...)
		if end == size {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				continue
			}
			buf, end = buf[:i+1], off+int64(i)+1
		}
		// buf holds whole lines after its first newline (or all of it at
		// the file's start).
		for {
			body := buf[:len(buf)-1] // without the line's newline
			i := bytes.LastIndexByte(body, '\n')
			if i < 0 && off > 0 {
				break
			}
			line := body[i+1:]
			if !fn(line, off+int64(i)+1) {
				return nil
			}
			buf = buf[:i+1]
			if len(buf) == 0 {
				return nil
			}
		}
	}
	return nil
}

// append writes evs with one write. A failure is logged: the journal
// already holds the truth, and a full disk must not turn into failed
// patches.
func (l *eventLog) append(evs []Event) {
	if len(evs) == 0 {
		return
	}
	l.buf = l.buf[:0]
	if l.torn {
		l.buf = append(l.buf, '\n')
	}
	for i := range evs {
		var ok bool
		if l.buf, ok = appendEvent(l.buf, &evs[i]); !ok {
			line, err := json.Marshal(evs[i])
			if err != nil {
				l.log.Error("encode event", "id", evs[i].ID, "err", err)
				continue
			}
			l.buf = append(l.buf, line...)
		}
		l.buf = append(l.buf, '\n')
	}
	n, err := l.f.Write(l.buf)
	l.size += int64(n)
	if err != nil {
		if !l.failing {
			l.log.Error("event log write failed; events are lost until it works again", "path", l.path, "err", err)
		}
		l.failing = true
		l.torn = true // a part may have been written
		return
	}
	l.torn = false
	if l.failing {
		l.log.Info("event log writable again", "path", l.path)
		l.failing = false
	}
	if cap(l.buf) > 1<<20 {
		l.buf = nil
	}
	if l.max > 0 && l.size >= l.max {
		l.rotate(evs[len(evs)-1].EventID)
	}
}

// rotate renames the file after its last event, last, and starts a new
// one: a rename and an open, with compression and deletion left to the
// background. A rotation that fails is logged and tried again after the
// next batch.
func (l *eventLog) rotate(last uint64) {
	nf, err := l.files.rotate(l.f, last)
	if err != nil {
		if !l.rotateFailing {
			l.log.Error("event log rotation failed; it grows until one works", "err", err)
		}
		l.rotateFailing = true
		return
	}
	if l.rotateFailing {
		l.log.Info("event log rotated again", "path", l.path)
		l.rotateFailing = false
	}
	l.f.Close() // its events are in the page cache, as any line's
	l.f, l.size, l.torn = nf, 0, false
}

func (l *eventLog) close() error {
	l.files.close()
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close event log: %w", err)
	}
	return nil
}
