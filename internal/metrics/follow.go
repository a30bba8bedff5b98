package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// Follow times each patch's apply from the service's events, until ctx
// ends or the store closes: from its patch.applying event to its applied
// or failed one (both stamped by the store when committed), 0 for one
// that failed while planned, before applying. It starts with
// the events from now on; a subscription that fell behind is taken up
// after its last event, one whose events are lost from the latest.
// The daemon runs it beside the worker.
func (m *Metrics) Follow(ctx context.Context) {
	if m.svc == nil {
		return
	}
	st, err := m.svc.Status(ctx)
	if err != nil {
		return
	}
	after := st.LastEventID
	// started holds the patches being applied: one at a time, so it
	// stays small; a patch put back in the queue (its daemon died) or
	// finished leaves it.
	started := map[string]time.Time{}
	for ctx.Err() == nil {
		sub, err := m.subscribe(ctx, after)
		if err == nil {
			for e := range sub.Events() {
				after = e.EventID
				m.observe(started, e)
			}
			err = sub.Err()
		}
		switch e := api.ErrorOf(err); {
		case e == nil || ctx.Err() != nil:
			return
		case e.Code == api.CodeSubscriberSlow:
		case e.Code == api.CodeEventsLost:
			clear(started)
			if st, err := m.svc.Status(ctx); err == nil {
				after = st.LastEventID
			}
		default:
			if !errors.Is(err, context.Canceled) {
				m.log.Debug("metrics: the event stream ended", "err", err)
			}
			return
		}
	}
}

// followed are the events Follow needs: a patch starts and ends being
// applied, or leaves the worker otherwise. Every patch received is an
// event too, one per request under load, which Follow has no use for.
var followed = []string{"patch.applying", "patch.applied", "patch.failed", "patch.requeued", "patch.dropped"}

// subscribe subscribes to the events Follow needs, or to all of them when
// the service cannot leave the others out.
func (m *Metrics) subscribe(ctx context.Context, after uint64) (api.Subscription, error) {
	if f, ok := m.svc.(api.EventFilter); ok {
		return f.SubscribeOnly(ctx, after, followed...)
	}
	return m.svc.Subscribe(ctx, after)
}

func (m *Metrics) observe(started map[string]time.Time, e api.Event) {
	t0, ok := started[e.ID]
	delete(started, e.ID)
	switch {
	case e.State == api.StateApplying:
		started[e.ID] = e.Time
	case e.Event == "patch.applied" && ok:
		m.applied.Observe(max(e.Time.Sub(t0), 0).Seconds())
	case e.Event == "patch.failed" && ok:
		m.failed.Observe(max(e.Time.Sub(t0), 0).Seconds())
	case e.Event == "patch.failed":
		// Failed while planned, before it was applying (its edits do
		// not match): 0 s, as its duration_ms. (A dropped patch's event
		// is patch.dropped.)
		m.failed.Observe(0)
	}
}
