package natsrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/fsutil"
	"github.com/patchd/patchd/internal/jetq"
)

// CursorFile is the runner's file in the state dir: the workspace it
// publishes for, the id that names this journal's events for JetStream's
// deduplication, and the last local event it published.
const CursorFile = "natsrun.json"

// cursorFlush is how often, at most, the cursor is written: an event
// published again after a crash within it is the same message to
// JetStream (the same Nats-Msg-Id, within the dedup window).
const cursorFlush = 250 * time.Millisecond

// cursor is where the forwarding of events stands.
type cursor struct {
	path string
	mu   sync.Mutex
	st   cursorState
	// dirty says st is newer than the file; flushed when it was written.
	dirty   bool
	flushed time.Time
}

type cursorState struct {
	Workspace string `json:"workspace"`
	// Journal names this state dir's journal: two runners of one
	// workspace on two machines number their events alike.
	Journal   string `json:"journal"`
	Published uint64 `json:"published"`
}

// openCursor reads the cursor, or starts one after the service's last
// event (what came before was never the queue's): on a first start, for
// another workspace, from a file a crash left unreadable, or past the
// journal's last event.
func openCursor(dir, ws string, svc api.Service) (*cursor, error) {
	c := &cursor{path: filepath.Join(dir, CursorFile)}
	st, err := svc.Status(context.Background())
	if err != nil {
		return nil, fmt.Errorf("runner: the service's status: %w", err)
	}
	b, err := os.ReadFile(c.path)
	// A cursor past the journal's last event is another journal's (the
	// queue was removed): this one's events are numbered anew.
	if err == nil && json.Unmarshal(b, &c.st) == nil && c.st.Workspace == ws && c.st.Journal != "" && c.st.Published <= st.LastEventID {
		return c, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", c.path, err)
	}
	id := make([]byte, 8)
	rand.Read(id)
	c.st = cursorState{Workspace: ws, Journal: hex.EncodeToString(id), Published: st.LastEventID}
	c.dirty = true
	if err := c.flush(true); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cursor) published() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Published
}

func (c *cursor) journal() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Journal
}

// set records that event n was published, and writes the file when it
// was last written longer than cursorFlush ago.
func (c *cursor) set(n uint64) error {
	c.mu.Lock()
	c.st.Published, c.dirty = n, true
	c.mu.Unlock()
	return c.flush(false)
}

// flush writes the cursor if it changed: now, or only if it is due.
func (c *cursor) flush(now bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty || (!now && time.Since(c.flushed) < cursorFlush) {
		return nil
	}
	b, _ := json.Marshal(c.st)
	if err := fsutil.WriteFileAtomic(c.path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	c.dirty, c.flushed = false, time.Now()
	return nil
}

// forward publishes each local event to patchd.events.<ws> and puts the
// patch's view in the KV bucket, in order, from the one after the cursor.
// An event is retried until it is published (or the runner stops): none
// is skipped, and the cursor moves only past published ones.
func (r *Runner) forward(ctx context.Context, s *setup) {
	defer func() {
		if err := r.cursor.flush(true); err != nil {
			r.log.Warn("nats: write the events cursor", "err", err)
		}
	}()
	after := r.cursor.published()
	for ctx.Err() == nil {
		sub, err := r.svc.Subscribe(ctx, after)
		if err != nil {
			if e := api.ErrorOf(err); e.Code == api.CodeEventsLost {
				st, serr := r.svc.Status(ctx)
				if serr != nil {
					jetq.Sleep(ctx, time.Second)
					continue
				}
				r.log.Warn("nats: the events after the last one published are no longer kept; going on from the latest", "published", after, "latest", st.LastEventID)
				after = st.LastEventID
				r.cursor.set(after)
				continue
			}
			r.log.Warn("nats: subscribe to the local events", "err", err)
			jetq.Sleep(ctx, time.Second)
			continue
		}
		for e := range sub.Events() {
			if !r.publishEvent(ctx, s, e) {
				return
			}
			after = e.EventID
			if err := r.cursor.set(after); err != nil {
				r.log.Warn("nats: write the events cursor", "err", err)
			}
			r.askStatus()
		}
		if err := sub.Err(); err != nil && ctx.Err() == nil {
			r.log.Debug("nats: local events ended; subscribing again", "after", after, "err", err)
		}
	}
}

// publishEvent puts e's patch's view and publishes e, retrying until
// both are done; false when the runner stopped first.
func (r *Runner) publishEvent(ctx context.Context, s *setup, e api.Event) bool {
	// The view first: whoever learns of the event from the stream finds
	// a view at least as new.
	v, err := r.svc.Get(ctx, e.ID)
	if err != nil {
		// Removed since (retention): the event says what it was.
		r.log.Debug("nats: no view to put", "id", e.ID, "err", err)
	} else if !r.putView(ctx, s, v) {
		return false
	}
	if (e.Event == "patch.submitted" || e.Event == "patch.resubmitted") && r.fromNATS.take(e.ID) {
		return true // the gateway published it when it queued the patch
	}
	e.Workspace = r.ws
	data, _ := json.Marshal(e)
	m := nats.NewMsg(jetq.EventsSubject(r.ws))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, r.ws+":"+r.cursor.journal()+":"+strconv.FormatUint(e.EventID, 10))
	return r.retry(ctx, "publish event", func(ctx context.Context) error {
		_, err := s.js.PublishMsg(ctx, m)
		return err
	})
}

// putView puts a patch's view in the KV bucket, retrying until it is.
func (r *Runner) putView(ctx context.Context, s *setup, v api.PatchView) bool {
	v.Workspace = r.ws
	key := jetq.PatchKey(r.ws, v.ID)
	if !jetq.ValidKey(key) {
		// Only a message published around the gateway carries such an id.
		r.log.Warn("nats: a patch id no KV key can hold; its view is not kept", "id", v.ID)
		return true
	}
	b, err := jetq.EncodeView(v)
	if err != nil {
		r.log.Error("nats: encode a patch view", "id", v.ID, "err", err)
		return true
	}
	return r.retry(ctx, "put the patch view", func(ctx context.Context) error {
		_, err := s.patches.Put(ctx, key, b)
		return err
	})
}

// retry calls f until it succeeds, with a growing delay, logging the
// first failure and then every tenth; false when ctx ended first.
func (r *Runner) retry(ctx context.Context, what string, f func(context.Context) error) bool {
	delay := 100 * time.Millisecond
	for n := 0; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if n%10 == 0 {
			r.log.Warn("nats: "+what+"; trying again", "err", err, "attempt", n+1)
		}
		if !jetq.Sleep(ctx, delay) {
			return false
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// maxFromNATS bounds fromNATS: the ids of patches whose submission
// event was never seen (the local events were lost) are forgotten.
const maxFromNATS = 1024

// fromNATS is a set of the ids of patches received from the work queue
// whose local submission event is yet to come.
type fromNATS struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add records id as received from the work queue.
func (f *fromNATS) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil || len(f.ids) >= maxFromNATS {
		f.ids = make(map[string]struct{})
	}
	f.ids[id] = struct{}{}
}

// take removes id and reports whether it was there.
func (f *fromNATS) take(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[id]
	delete(f.ids, id)
	return ok
}
