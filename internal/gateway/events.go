package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// Subscribe implements api.Service: the events of the PATCHD_EVENTS
// stream after sequence after (of s's workspace when bound), in order,
// each numbered by its sequence there (Event.EventID) and naming its
// workspace, then the new ones as runners publish them. A start the
// stream no longer holds (it keeps events jetq.EventsMaxAge), or one past
// its last event, is Kind gone, code events_lost.
func (s *Service) Subscribe(ctx context.Context, after uint64) (api.Subscription, error) {
	info, err := s.events.Info(ctx)
	if err != nil {
		return nil, unavailable(err, "subscribe to events")
	}
	if after > 0 && info.State.FirstSeq > after+1 {
		return nil, &api.Error{Kind: api.KindGone, Code: api.CodeEventsLost,
			Message: fmt.Sprintf("events after %d are no longer kept (the oldest kept is %d): list the patches again and subscribe after the last event id", after, info.State.FirstSeq)}
	}
	if after > info.State.LastSeq {
		return nil, &api.Error{Kind: api.KindGone, Code: api.CodeEventsLost,
			Message: fmt.Sprintf("event %d is after the last one, %d (was the events stream replaced?): list the patches again and subscribe after the last event id", after, info.State.LastSeq)}
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	if s.ws != "" {
		cfg.FilterSubjects = []string{jetq.EventsSubject(s.ws)}
	}
	cons, err := s.js.OrderedConsumer(ctx, jetq.StreamEvents, cfg)
	if err != nil {
		return nil, unavailable(err, "subscribe to events")
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, unavailable(err, "subscribe to events")
	}
	sub := &subscription{c: make(chan api.Event)}
	go sub.run(ctx, s, it)
	return sub, nil
}

// subscription is an api.Subscription over an ordered consumer.
type subscription struct {
	c   chan api.Event
	mu  sync.Mutex
	err error // why c was closed; set before it is
}

func (sub *subscription) Events() <-chan api.Event { return sub.c }

func (sub *subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

func (sub *subscription) run(ctx context.Context, s *Service, it jetstream.MessagesContext) {
	var err error
	defer func() {
		it.Stop()
		sub.mu.Lock()
		sub.err = err
		sub.mu.Unlock()
		close(sub.c)
	}()
	for {
		m, nerr := it.Next(jetstream.NextContext(ctx))
		if nerr != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = unavailable(nerr, "events")
			}
			return
		}
		e, ok := s.event(m)
		if !ok {
			continue
		}
		select {
		case sub.c <- e:
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
	}
}

// event reads a message of the events stream: a runner's api.Event, its
// id the stream sequence, its workspace the subject's.
func (s *Service) event(m jetstream.Msg) (api.Event, bool) {
	md, err := m.Metadata()
	if err != nil {
		return api.Event{}, false
	}
	ws := strings.TrimPrefix(m.Subject(), jetq.SubjectEventsPrefix)
	var e api.Event
	if err := json.Unmarshal(m.Data(), &e); err != nil || jetq.CheckWorkspace(ws) != nil {
		s.log.Warn("gateway: an event that does not decode", "subject", m.Subject(), "seq", md.Sequence.Stream, "err", err)
		return api.Event{}, false
	}
	e.EventID, e.Workspace = md.Sequence.Stream, ws
	return e, true
}

// lastEventID is the events stream's last sequence.
func (s *Service) lastEventID(ctx context.Context) (uint64, error) {
	info, err := s.events.Info(ctx)
	if err != nil {
		return 0, unavailable(err, "read the events stream")
	}
	return info.State.LastSeq, nil
}

// Wait implements api.Service: it reads the patch's view, and until it is
// finished follows the events (subscribed from before the read, so that
// none is missed) until one says it is.
func (s *Service) Wait(ctx context.Context, id string) (api.PatchView, error) {
	after, err := s.lastEventID(ctx)
	if err != nil {
		return api.PatchView{}, err
	}
	v, err := s.find(ctx, id)
	if err != nil || api.Finished(v.State) {
		return v, err
	}
	b, err := s.Bind(v.Workspace)
	if err != nil {
		return v, err
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := b.Subscribe(fctx, after)
	if err != nil {
		return v, err
	}
	for e := range sub.Events() {
		if e.ID != id || !api.Finished(e.State) {
			continue
		}
		if w, ok, err := b.view(ctx, v.Workspace, id); err == nil && ok && api.Finished(w.State) {
			return w, nil
		}
		// The runner puts the view after it publishes the event.
		v.State, v.Error, v.Code = e.State, e.Error, e.Code
		return v, nil
	}
	if ctx.Err() != nil {
		if w, ok, err := b.view(context.WithoutCancel(ctx), v.Workspace, id); err == nil && ok {
			v = w
		}
		return v, ctx.Err()
	}
	err = sub.Err()
	if err == nil {
		err = errors.New("events ended")
	}
	return v, api.ErrorOf(err)
}

// Status implements api.Service: per workspace (s's only, when bound),
// the patches queued are its messages still in the PATCHD work queue
// (one stream info call for all workspaces), the one its runner says it
// is applying counted once, as applying (it stays in the queue until
// acknowledged); the other counts are those its runner put in
// PATCHD_WORKSPACES. LastEventID is the events stream's last sequence.
func (s *Service) Status(ctx context.Context) (api.Status, error) {
	last, err := s.lastEventID(ctx)
	if err != nil {
		return api.Status{}, err
	}
	wss := []string{s.ws}
	filter := jetq.WorkSubject(s.ws)
	if s.ws == "" {
		if wss, err = s.Workspaces(ctx); err != nil {
			return api.Status{}, err
		}
		filter = jetq.SubjectWorkPrefix + "*"
	}
	info, err := s.work.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return api.Status{}, unavailable(err, "read the work queue")
	}
	st := api.Status{LastEventID: last}
	for _, ws := range wss {
		inQueue := int(info.State.Subjects[jetq.WorkSubject(ws)])
		var r jetq.WorkspaceRecord
		e, err := s.wsKV.Get(ctx, ws)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return api.Status{}, unavailable(err, "read the workspaces")
		default:
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				r = jetq.WorkspaceRecord{}
			}
		}
		rq := r.Status.Queue
		q := &st.Queue
		queued := max(inQueue-rq.Applying, 0)
		q.Queued += queued
		q.Applying += rq.Applying
		q.Applied += rq.Applied
		q.Failed += rq.Failed
		q.Reverted += rq.Reverted
		// The runner's queued and applying patches are (or were) the
		// queue's: counted from it instead.
		q.Total += max(rq.Total-rq.Queued-rq.Applying, 0) + queued + rq.Applying
		q.JournalBytes += rq.JournalBytes
		q.Batches += rq.Batches
		q.Records += rq.Records
		if rc := r.Status.Recent; rc != nil {
			if st.Recent == nil {
				st.Recent = &api.Recent{}
			}
			addRecent(st.Recent, rc)
		}
	}
	return st, nil
}

// addRecent adds a workspace's recent counts to the sum; Since is the
// latest start of counting among them (what every count covers).
func addRecent(sum, r *api.Recent) {
	sum.AppliedHour += r.AppliedHour
	sum.FailedHour += r.FailedHour
	sum.AppliedDay += r.AppliedDay
	sum.FailedDay += r.FailedDay
	if r.Since.After(sum.Since) {
		sum.Since = r.Since
	}
}
