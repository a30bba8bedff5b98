// Package alert sends notifications of patch outcomes to webhooks (--notify):
// Slack incoming webhooks, Discord's Slack-compatible endpoint, and a
// generic JSON POST signed with HMAC-SHA256. (Package notify is another
// thing: it talks to the process supervisor.)
//
// Messages go through a durable outbox, a file under the state directory:
// the outbox follows the service's events (api.Service.Subscribe) from the
// last one it has enqueued, so that a restart neither loses nor repeats a
// message, and its own goroutines deliver them, one receiver at a time in
// order, with retries, backoff and a limit. Nothing of it runs on the
// worker's or the store's path: a receiver that is down only fills the
// outbox, up to a bound (then the oldest messages are dropped, counted and
// logged).
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
)

// Defaults of Options.
const (
	DefaultMaxAge     = 24 * time.Hour
	DefaultMaxPending = 1000
	DefaultFirstRetry = time.Second
	DefaultMaxRetry   = 5 * time.Minute
	DefaultTimeout    = 10 * time.Second
)

// Options configures an Outbox.
type Options struct {
	// Dir is the outbox's directory (the state dir's notify/); required.
	Dir string
	// Service gives the events and the patches; required.
	Service api.Service
	// Receivers are the webhooks (config.Notify) to notify.
	Receivers []config.Notify
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxAge is how long a message is retried before it is given up
	// (DefaultMaxAge); MaxPending bounds a receiver's pending messages
	// (DefaultMaxPending): past it the oldest are dropped.
	MaxAge     time.Duration
	MaxPending int
	// FirstRetry and MaxRetry bound the backoff between attempts
	// (DefaultFirstRetry, DefaultMaxRetry); each wait is doubled, then
	// drawn at random between its half and itself.
	FirstRetry, MaxRetry time.Duration
	// Timeout bounds one attempt (DefaultTimeout).
	Timeout time.Duration
}

// Outbox is the durable queue of notifications and their delivery.
type Outbox struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
	rcv    []*receiver

	mu sync.Mutex
	j  *journal

	stop    context.CancelFunc
	hard    context.CancelFunc // cuts the attempts in flight
	done    sync.WaitGroup
	closing sync.Once
}

// receiver is one webhook and its delivery state.
type receiver struct {
	config.Notify
	id   string
	name string        // redacted
	wake chan struct{} // a message was added

	// guarded by Outbox.mu
	st api.NotifyStatus
}

// New opens the outbox under opts.Dir. Messages pending for a receiver
// that is no longer configured are removed (and logged).
func New(opts Options) (*Outbox, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.FirstRetry <= 0 {
		opts.FirstRetry = DefaultFirstRetry
	}
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = DefaultMaxRetry
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	o := &Outbox{opts: opts, log: opts.Logger, client: newClient(opts.Timeout)}
	for _, n := range opts.Receivers {
		r := &receiver{Notify: n, id: n.ID(), name: n.Redacted(), wake: make(chan struct{}, 1)}
		r.st = api.NotifyStatus{Receiver: r.name, Kind: n.Kind, Events: slices.Clone(n.Events)}
		o.rcv = append(o.rcv, r)
	}
	j, found, bad, err := openJournal(filepath.Join(opts.Dir, "outbox.jsonl"))
	if err != nil {
		return nil, err
	}
	o.j = j
	if bad > 0 {
		o.log.Warn("notify: damaged lines in the outbox were skipped", "lines", bad, "path", j.path)
	}
	if !found {
		// The first start: from the latest event on, so that a new
		// receiver is not sent the history.
		st, err := opts.Service.Status(context.Background())
		if err == nil {
			err = j.append(true, record{Op: "cursor", EventID: st.LastEventID})
		}
		if err != nil {
			j.f.Close()
			return nil, fmt.Errorf("notify outbox: start after the latest event: %w", err)
		}
	}
	removed := 0
	for _, m := range slices.Clone(j.pending) {
		if o.receiver(m.Receiver) == nil {
			if err := j.done(m, "removed"); err != nil {
				j.f.Close()
				return nil, err
			}
			removed++
		}
	}
	if removed > 0 {
		o.log.Warn("notify: pending messages of receivers no longer configured were removed", "messages", removed)
	}
	return o, nil
}

func (o *Outbox) receiver(id string) *receiver {
	for _, r := range o.rcv {
		if r.id == id {
			return r
		}
	}
	return nil
}

// Start follows the events and delivers until Close.
func (o *Outbox) Start() {
	ctx, stop := context.WithCancel(context.Background())
	hardCtx, hard := context.WithCancel(context.Background())
	o.stop, o.hard = stop, hard
	if len(o.rcv) > 0 {
		o.done.Add(1)
		go func() {
			defer o.done.Done()
			o.follow(ctx)
		}()
	}
	for _, r := range o.rcv {
		o.done.Add(1)
		go func() {
			defer o.done.Done()
			o.deliver(ctx, hardCtx, r)
		}()
	}
}

// closeGrace is how long Close lets an attempt in flight finish, so that
// a message the receiver got is not sent again after a restart.
const closeGrace = 2 * time.Second

// Close stops following and delivering (an attempt in flight is given
// closeGrace to finish) and writes the outbox's cursor. What is pending
// stays in the outbox for the next start.
func (o *Outbox) Close() error {
	var err error
	o.closing.Do(func() {
		if o.stop != nil {
			o.stop()
			t := time.AfterFunc(closeGrace, o.hard)
			o.done.Wait()
			t.Stop()
			o.hard()
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		err = o.j.close()
	})
	return err
}

// Status reports each receiver: its pending messages and how its
// deliveries went since the start, with its URL redacted.
func (o *Outbox) Status() []api.NotifyStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	pending := map[string]int{}
	for _, m := range o.j.pending {
		pending[m.Receiver]++
	}
	out := make([]api.NotifyStatus, 0, len(o.rcv))
	for _, r := range o.rcv {
		st := r.st
		st.Events = slices.Clone(st.Events)
		st.Pending = pending[r.id]
		out = append(out, st)
	}
	return out
}

// follow enqueues a message for each receiver that asked for each event,
// from the outbox's cursor on.
func (o *Outbox) follow(ctx context.Context) {
	o.mu.Lock()
	after := o.j.cursor
	o.mu.Unlock()
	for ctx.Err() == nil {
		after = o.followOnce(ctx, after)
	}
}

// followOnce subscribes after the event after and enqueues what comes
// until the subscription ends; it returns the last event enqueued.
func (o *Outbox) followOnce(ctx context.Context, after uint64) uint64 {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := o.opts.Service.Subscribe(ctx, after)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Kind == api.KindGone {
			st, serr := o.opts.Service.Status(ctx)
			if serr == nil {
				o.log.Warn("notify: events were rotated away before they were read; their notifications are lost", "after", after, "resume_after", st.LastEventID)
				return st.LastEventID
			}
		}
		if ctx.Err() == nil {
			o.log.Warn("notify: follow the events", "err", err)
			sleep(ctx, time.Second)
		}
		return after
	}
	for e := range sub.Events() {
		if err := o.enqueue(ctx, e); err != nil {
			o.log.Error("notify: the outbox cannot be written; retrying the event", "event_id", e.EventID, "err", err)
			sleep(ctx, time.Second)
			break
		}
		after = e.EventID
	}
	if err := sub.Err(); err != nil && ctx.Err() == nil {
		o.log.Debug("notify: the event stream ended; following again", "after", after, "err", err)
	}
	return after
}

// enqueue adds the messages of one event, durably, then wakes their
// receivers.
func (o *Outbox) enqueue(ctx context.Context, e api.Event) error {
	kind := outcome(e.Event)
	var targets []*receiver
	if kind != "" {
		for _, r := range o.rcv {
			if slices.Contains(r.Events, kind) {
				targets = append(targets, r)
			}
		}
	}
	var msgs []*message
	if len(targets) > 0 {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := o.opts.Service.Get(gctx, e.ID)
		cancel()
		if err != nil {
			v = api.PatchView{ID: e.ID} // expired or gone: the event says enough
		}
		for _, r := range targets {
			var body []byte
			var err error
			switch r.Kind {
			case config.NotifySlack, config.NotifyDiscord:
				body, err = slack(e, v, r.Kind == config.NotifyDiscord)
			default:
				body, err = generic(e, v)
			}
			if err != nil {
				return fmt.Errorf("render: %w", err)
			}
			msgs = append(msgs, &message{Key: fmt.Sprintf("%d/%s", e.EventID, r.id), Receiver: r.id,
				EventID: e.EventID, Event: e.Event, Patch: e.ID, Created: time.Now().UTC(), Body: body})
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.EventID <= o.j.cursor {
		return nil // enqueued before a restart
	}
	if err := o.j.add(e.EventID, msgs); err != nil {
		return err
	}
	for _, r := range targets {
		o.trim(r)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// trim drops a receiver's oldest pending messages past MaxPending. o.mu
// is held.
func (o *Outbox) trim(r *receiver) {
	var mine []*message
	for _, m := range o.j.pending {
		if m.Receiver == r.id {
			mine = append(mine, m)
		}
	}
	n := len(mine) - o.opts.MaxPending
	if n <= 0 {
		return
	}
	for _, m := range mine[:n] {
		if err := o.j.done(m, "dropped"); err != nil {
			o.log.Error("notify: record a dropped message", "err", err)
			return
		}
		r.st.Dropped++
	}
	o.log.Warn("notify: the outbox is full for a receiver; its oldest messages were dropped",
		"receiver", r.name, "dropped", n, "max_pending", o.opts.MaxPending)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
