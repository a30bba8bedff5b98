package patchsvc

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/store"
)

// Subscribe implements api.Service over the store's event hub: the store
// never waits for a subscriber (see store.Store.Subscribe), and this adds
// one goroutine per subscription that hands its events on as api.Events.
func (s *Service) Subscribe(ctx context.Context, after uint64) (api.Subscription, error) {
	return s.subscribe(ctx, after, nil)
}

// SubscribeOnly implements api.EventFilter: the store's hub leaves the
// other events out (store.Store.SubscribeFunc).
func (s *Service) SubscribeOnly(ctx context.Context, after uint64, events ...string) (api.Subscription, error) {
	events = slices.Clone(events)
	return s.subscribe(ctx, after, func(e *store.Event) bool { return slices.Contains(events, e.Event) })
}

func (s *Service) subscribe(ctx context.Context, after uint64, keep func(*store.Event) bool) (api.Subscription, error) {
	sub, err := s.st.SubscribeFunc(ctx, after, keep)
	if err != nil {
		return nil, s.refuse(refusal{}, err)
	}
	out := &subscription{c: make(chan api.Event)}
	go out.run(ctx, s, sub)
	return out, nil
}

// subscription is an api.Subscription.
type subscription struct {
	c  chan api.Event
	mu sync.Mutex
	// err is why c was closed; set before it is.
	err error
}

func (sub *subscription) Events() <-chan api.Event { return sub.c }

func (sub *subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

func (sub *subscription) run(ctx context.Context, s *Service, in *store.Subscription) {
	var err error
	defer func() {
		sub.mu.Lock()
		sub.err = err
		sub.mu.Unlock()
		close(sub.c)
	}()
	for e := range in.C {
		select {
		case sub.c <- s.event(e):
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
	}
	err = in.Err()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = s.refuse(refusal{}, err)
	}
}

func (s *Service) event(e store.Event) api.Event {
	return api.Event{EventID: e.EventID, Time: e.Time, Event: e.Event, ID: e.ID, Seq: e.Seq,
		State: string(e.State), Error: s.hide(e.Error), Code: e.Code}
}

// Wait implements api.Service: it reads the patch, and until it is
// finished follows its events, subscribed from before the read so that no
// change is missed. A subscription dropped for falling behind is taken up
// again.
func (s *Service) Wait(ctx context.Context, id string) (api.PatchView, error) {
	for {
		after := s.st.LastEventID()
		p, ok := s.st.Get(id)
		if !ok {
			return api.PatchView{}, s.notFound(id)
		}
		if api.Finished(string(p.State)) {
			return s.view(p, true), nil
		}
		err := s.follow(ctx, after, id)
		if ctx.Err() != nil {
			if q, ok := s.st.Get(id); ok {
				p = q
			}
			return s.view(p, true), ctx.Err()
		}
		if err != nil && !errors.Is(err, store.ErrSlowSubscriber) && !errors.Is(err, store.ErrEventsLost) {
			return s.view(p, true), s.refuse(refusal{}, err)
		}
		// Finished, or the subscription fell behind: read it again.
	}
}

// follow returns once an event after after says patch id is finished (nil),
// or the subscription ends (why).
func (s *Service) follow(ctx context.Context, after uint64, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.st.SubscribeFunc(ctx, after, func(e *store.Event) bool { return e.ID == id })
	if err != nil {
		return err
	}
	for e := range sub.C {
		if api.Finished(string(e.State)) {
			return nil
		}
	}
	return sub.Err()
}
