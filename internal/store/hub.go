package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

var (
	// ErrSlowSubscriber ends a Subscription whose reader fell more than
	// maxPending events behind. It got every event up to the drop;
	// subscribing again after the last one it read misses nothing.
	ErrSlowSubscriber error = &sentinel{"subscriber fell behind", CodeSlowSubscriber}
	// ErrEventsLost means the events asked for can no longer be delivered:
	// older than the store keeps (in memory, or in an event log it can read
	// back), missing from the event log, or numbered beyond the last event.
	// The subscriber should read the current state again (List, Get) and
	// subscribe after LastEventID, taken before reading it.
	ErrEventsLost error = &sentinel{"events no longer available", CodeEventsLost}
)

const (
	// eventRing is how many of the latest events are kept in memory for
	// subscribers that resume.
	eventRing = 1024
	// maxPending is how many events a subscription may have waiting for
	// its reader before it is dropped with ErrSlowSubscriber.
	maxPending = 4096
	// maxBacklog is how many events a subscription may ask to be replayed
	// from the event log; further back is ErrEventsLost.
	maxBacklog = 100_000
	// maxReplayScan bounds how much of the event log a replay reads back
	// to find where to start.
	maxReplayScan = 64 << 20
)

// hub hands committed events to subscribers. The committer publishes to
// it without ever waiting for them: each subscription has a bounded queue
// that a goroutine of its own drains into its channel.
type hub struct {
	files *eventFiles // the event log replays read; nil for none

	mu     sync.Mutex
	last   uint64  // the last event's number
	first  uint64  // the first event published since Open
	ring   []Event // the latest events, event n at n%eventRing
	subs   map[*Subscription]struct{}
	closed bool

	// lastID is last, for LastEventID to read without h.mu.
	lastID atomic.Uint64
}

func newHub(files *eventFiles, last uint64) *hub {
	h := &hub{files: files, last: last, first: last + 1, subs: make(map[*Subscription]struct{})}
	h.lastID.Store(last)
	return h
}

// publish hands evs, numbered on from h.last, to every subscriber. A
// subscriber whose queue would pass maxPending is dropped instead.
func (h *hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ring == nil {
		h.ring = make([]Event, eventRing)
	}
	for _, e := range evs {
		h.ring[e.EventID%eventRing] = e
	}
	h.last = evs[len(evs)-1].EventID
	h.lastID.Store(h.last)
	for sub := range h.subs {
		n := len(sub.queue)
		if sub.keep == nil {
			sub.queue = append(sub.queue, evs...)
		} else {
			for i := range evs {
				if sub.keep(&evs[i]) {
					sub.queue = append(sub.queue, evs[i])
				}
			}
		}
		if len(sub.queue) == n {
			continue // nothing for it: it is not woken
		}
		if len(sub.queue)+sub.inFlight > maxPending {
			clear(sub.queue[n:])
			sub.queue = sub.queue[:n]
			sub.endLocked(fmt.Errorf("%w: more than %d events waited for it (subscribe again after the last one read)", ErrSlowSubscriber, maxPending))
			continue
		}
		sub.kickLocked()
	}
}

// ringFrom is the oldest event number the ring holds (h.last+1 if none).
func (h *hub) ringFrom() uint64 {
	lo := uint64(1)
	if h.last >= eventRing {
		lo = h.last - eventRing + 1
	}
	return max(lo, h.first)
}

// close ends every subscription with ErrClosed once its reader has what
// was published.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		sub.endLocked(ErrClosed)
	}
}

// Subscription delivers events in order on C. C is closed when the
// subscription ends; Err then says why. Cancel the context given to
// Subscribe to end it.
type Subscription struct {
	// C delivers the events, numbered one after the other.
	C <-chan Event

	c      chan Event
	h      *hub
	after  uint64 // replay from the event log: (after, fileTo]
	fileTo uint64
	kick   chan struct{}     // a wake-up for run; capacity 1
	keep   func(*Event) bool // the events it delivers; nil for all

	// Guarded by h.mu. inFlight counts the batch run took from queue and
	// is still handing to the reader: it waits as much as queue does.
	queue    []Event
	inFlight int
	err      error
}

// Subscribe returns a subscription to every event numbered after after,
// in order and without gaps: first those already committed (from memory,
// where the latest 1024 are kept, or else read back from the event log
// and its rotated files, at most 100,000), then each batch as it commits. Pass 0 for the whole
// history (as far as it is kept), or LastEventID for only what comes next.
//
// The committer never waits for a subscriber: one that lets more than
// 4096 events wait is ended with ErrSlowSubscriber after it has read the
// events up to then, and can subscribe again after the last one it read.
// A requested start the store cannot serve is refused with ErrEventsLost;
// a gap found while replaying the event log (lines a full disk or a crash
// kept from it) ends the subscription with ErrEventsLost at the gap.
// After Close, the subscription ends with ErrClosed once its reader has
// every event committed before.
func (s *Store) Subscribe(ctx context.Context, after uint64) (*Subscription, error) {
	return s.hub.subscribe(ctx, after, nil)
}

// SubscribeFunc is Subscribe delivering only the events keep accepts, in
// order, with gaps where it refused one; keep is called with the hub's
// lock held and must not block or keep e. The events refused cost the
// subscription nothing further: they wake no goroutine and do not count
// towards the 4096 a subscriber may let wait. For subscribers that
// follow a few kinds of event (outcomes, one patch's events), where every
// patch received would otherwise be handed from goroutine to goroutine.
func (s *Store) SubscribeFunc(ctx context.Context, after uint64, keep func(e *Event) bool) (*Subscription, error) {
	return s.hub.subscribe(ctx, after, keep)
}

// LastEventID returns the number of the last event published, 0 if there
// has been none. Taken before reading the state (List, Get), it is where
// a subscription that follows on from that state starts. Once Submit,
// Update or Drop has returned, it counts their event.
//
// It never waits for a lock (/health asks it).
func (s *Store) LastEventID() uint64 {
	return s.hub.lastID.Load()
}

func (h *hub) subscribe(ctx context.Context, after uint64, keep func(*Event) bool) (*Subscription, error) {
	c := make(chan Event)
	sub := &Subscription{C: c, c: c, h: h, after: after, kick: make(chan struct{}, 1), keep: keep}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	from := h.ringFrom()
	switch {
	case after > h.last:
		return nil, fmt.Errorf("%w: event %d is after the last one, %d (was the event log replaced?)", ErrEventsLost, after, h.last)
	case after+1 >= from:
	case h.files == nil:
		return nil, fmt.Errorf("%w: the oldest event kept is %d, and there is no event log", ErrEventsLost, from)
	case after+1 < h.files.oldest.Load():
		return nil, fmt.Errorf("%w: event %d was in a rotated event log since deleted: the oldest kept is %d", ErrEventsLost, after+1, h.files.oldest.Load())
	case h.last-after > maxBacklog:
		return nil, fmt.Errorf("%w: events after %d are %d, more than the %d a subscription may replay", ErrEventsLost, after, h.last-after, maxBacklog)
	default:
		sub.fileTo = from - 1
	}
	for n := max(after+1, from); n <= h.last; n++ {
		if e := &h.ring[n%eventRing]; keep == nil || keep(e) {
			sub.queue = append(sub.queue, *e)
		}
	}
	h.subs[sub] = struct{}{}
	go sub.run(ctx)
	return sub, nil
}

// Err says why C was closed: ErrClosed, ErrSlowSubscriber, ErrEventsLost
// or the context's error. It is nil while the subscription runs.
func (sub *Subscription) Err() error {
	sub.h.mu.Lock()
	defer sub.h.mu.Unlock()
	return sub.err
}

// endLocked ends sub with err (unless it has ended already) once its
// queue is delivered.
func (sub *Subscription) endLocked(err error) {
	if sub.err == nil {
		sub.err = err
	}
	delete(sub.h.subs, sub)
	sub.kickLocked()
}

func (sub *Subscription) kickLocked() {
	select {
	case sub.kick <- struct{}{}:
	default:
	}
}

// end ends sub at once with err.
func (sub *Subscription) end(err error) {
	sub.h.mu.Lock()
	sub.endLocked(err)
	sub.queue = nil
	sub.h.mu.Unlock()
}

// run delivers sub's events: the replay from the event log, then its
// queue, until the subscription ends.
func (sub *Subscription) run(ctx context.Context) {
	h := sub.h
	defer close(sub.c)
	if sub.fileTo > sub.after {
		if err := h.files.replay(ctx, sub.after, sub.fileTo, sub.keep, sub.c); err != nil {
			sub.end(err)
			return
		}
	}
	var spare []Event
	for {
		h.mu.Lock()
		batch := sub.queue
		sub.queue = spare
		sub.inFlight = len(batch)
		ended := sub.err != nil
		h.mu.Unlock()
		for _, e := range batch {
			select {
			case sub.c <- e:
			case <-ctx.Done():
				sub.end(ctx.Err())
				return
			}
		}
		clear(batch)
		spare = batch[:0]
		if len(batch) > 0 {
			continue
		}
		if ended {
			return
		}
		select {
		case <-sub.kick:
		case <-ctx.Done():
			sub.end(ctx.Err())
			return
		}
	}
}
