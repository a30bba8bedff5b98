package patchsvc

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/store"
)

// recentSeed is how many events before the counting began the counts of
// api.Recent start from: once the daemon runs a while, those the store
// still holds in memory; after a start, read from the event log.
const recentSeed = 1024

// recentMinutes is the day the counts cover, in one-minute buckets.
const recentMinutes = 24 * 60

// recentBucket counts one minute's outcomes.
type recentBucket struct {
	minute          int64 // Unix minute this bucket holds; another means empty
	applied, failed int
}

// recent counts applied and failed patches per minute over the last day,
// from the events as the store commits them: no read of the history, a
// fixed size whatever its length. It starts counting at the first Status,
// in the background, from the last recentSeed events, and follows the
// events until the store closes; until the seed is read, Status leaves
// Recent out.
type recent struct {
	once    sync.Once
	mu      sync.Mutex
	since   time.Time
	buckets [recentMinutes]recentBucket
	// seedGate, if set (tests), is called before the seed is read.
	seedGate func()
}

// start begins counting, once, in the background: it reads the seed (the
// last recentSeed events), then follows the new ones. No Status waits for
// it: after a start the seed is read from the event log (~1,000 lines),
// and /health, which calls Status, is on the path to ready. Until it is
// read, counts says nothing (nil).
func (r *recent) start(s *Service) {
	r.once.Do(func() { go r.seed(s) })
}

// seed counts the last recentSeed events and then follows the new ones,
// until the store closes.
func (r *recent) seed(s *Service) {
	if r.seedGate != nil {
		r.seedGate()
	}
	last := s.st.LastEventID()
	after := uint64(0)
	if last > recentSeed {
		after = last - recentSeed
	}
	// The seed is read whole (its first event's time is where the
	// counts start), then only outcomes: every patch received is an
	// event too, one per request under load.
	sub, err := s.st.SubscribeFunc(context.Background(), after, func(e *store.Event) bool {
		return e.EventID <= last || isOutcome(e)
	})
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			s.log.Warn("recent counts: cannot follow the events", "err", err)
		}
		return
	}
	since, seen := time.Now(), after
	for seen < last {
		e, ok := <-sub.C
		if !ok {
			break
		}
		if seen == after && e.Time.Before(since) {
			since = e.Time
		}
		seen = e.EventID
		r.count(e)
	}
	r.mu.Lock()
	r.since = since
	r.mu.Unlock()
	r.follow(s, sub, seen)
}

// isOutcome says whether e is one of the events recent counts.
func isOutcome(e *store.Event) bool { return e.Event == "patch.applied" || e.Event == "patch.failed" }

// count counts e if it is an outcome.
func (r *recent) count(e store.Event) {
	switch e.Event {
	case "patch.applied":
		r.add(e.Time, true)
	case "patch.failed":
		r.add(e.Time, false)
	}
}

// follow counts the events of sub after last, and of the subscriptions
// after it when it falls behind, until the store closes.
func (r *recent) follow(s *Service, sub *store.Subscription, last uint64) {
	for {
		for e := range sub.C {
			last = e.EventID
			r.count(e)
		}
		err := sub.Err()
		switch {
		case errors.Is(err, store.ErrSlowSubscriber):
		case errors.Is(err, store.ErrEventsLost):
			last = s.st.LastEventID()
		default:
			return // the store closed
		}
		if sub, err = s.st.SubscribeFunc(context.Background(), last, isOutcome); err != nil {
			return
		}
	}
}

func (r *recent) add(t time.Time, applied bool) {
	m := t.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &r.buckets[m%recentMinutes]
	if b.minute != m {
		*b = recentBucket{minute: m}
	}
	if applied {
		b.applied++
	} else {
		b.failed++
	}
}

// counts sums the buckets of the last hour and day before now.
func (r *recent) counts(now time.Time) *api.Recent {
	m := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		return nil
	}
	out := &api.Recent{Since: r.since}
	for _, b := range r.buckets {
		age := m - b.minute
		if age < 0 || age >= recentMinutes {
			continue
		}
		out.AppliedDay += b.applied
		out.FailedDay += b.failed
		if age < 60 {
			out.AppliedHour += b.applied
			out.FailedHour += b.failed
		}
	}
	return out
}
