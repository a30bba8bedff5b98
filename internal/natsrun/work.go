package natsrun

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// pullWait bounds one pull: a stop waits for it to end, and a message it
// brings then is handed back at once. Pulls go on while a patch is being
// applied (nothing comes: MaxAckPending is 1), because each renews the
// runner's pin (see jetq.ConsumerConfig): it is at most a third of the
// pin's TTL.
const pullWait = time.Second

// work takes the workspace's patches one at a time (the consumer's
// MaxAckPending is 1: the order of the queue is the order applied): pull
// brings them, handle carries each to an outcome. At the end the pin is
// given up, so that a standby takes over at once.
func (r *Runner) work(ctx context.Context, s *setup) {
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	wg.Go(func() { r.pull(ctx, s, msgs) })
	for msg := range msgs {
		if ctx.Err() != nil {
			// Stopping: the next runner takes it now, not after AckWait.
			msg.Nak()
			continue
		}
		r.handle(ctx, s, msg)
	}
	wg.Wait()
	r.unpin(s)
}

// pull pulls in the consumer's priority group until ctx ends, and hands
// each message to work; it closes msgs when done.
func (r *Runner) pull(ctx context.Context, s *setup, msgs chan<- jetstream.Msg) {
	defer close(msgs)
	delay := 50 * time.Millisecond
	remake := false
	wait := min(pullWait, max(r.opts.Queue.AckWait/3, 10*time.Millisecond))
	for ctx.Err() == nil {
		// Not bound to ctx: a pull cancelled halfway could still be
		// served by the server, and its message would wait a whole
		// AckWait for the next runner.
		if remake {
			// Removed by hand, or lost with a stream that was made
			// again: made again, with the runner's settings.
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := jetq.EnsureConsumer(cctx, s.js, r.ws, jetq.ConsumerOptions{MaxDeliver: r.opts.Queue.MaxDeliver, AckWait: r.opts.Queue.AckWait})
			cancel()
			if err != nil {
				r.log.Warn("nats: make the workspace's consumer again", "err", err)
				if !jetq.Sleep(ctx, time.Second) {
					return
				}
				continue
			}
			s.cons, remake = c, false
		}
		msg, err := s.cons.Next(jetstream.FetchMaxWait(wait), jetstream.FetchPriorityGroup(jetq.PriorityGroup))
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			r.log.Warn("nats: the workspace's consumer is gone; making it again", "consumer", jetq.ConsumerName(r.ws), "err", err)
			remake = true
			r.setPinned(false)
			continue
		}
		if errors.Is(err, jetstream.ErrPinIDMismatch) {
			// Our pin lapsed (a pull came too late) and the server
			// pinned another runner, or none yet.
			r.setPinned(false)
			r.checkStandby(ctx, s, true)
			continue
		}
		if err != nil {
			if !isTimeout(err) {
				r.log.Debug("nats: pull", "err", err)
				if !jetq.Sleep(ctx, delay) {
					return
				}
				delay = min(2*delay, 2*time.Second)
			} else if !r.pinned.Load() {
				r.checkStandby(ctx, s, false)
			}
			continue
		}
		delay = 50 * time.Millisecond
		if msg.Headers().Get(pinHeader) != "" {
			r.setPinned(true)
		}
		msgs <- msg
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded)
}

// handle carries one message to an outcome: Submit (a Duplicate is the
// same patch received before: its outcome is waited for), Wait with
// progress signals, then the ack. A refusal or an error is a negative
// ack with a backoff; the message comes back, and on its MaxDeliver-th
// delivery is made a dead letter here (dead.go; one whose runner died on
// that delivery, the gateway buries from the max-deliveries advisory).
func (r *Runner) handle(ctx context.Context, s *setup, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.log.Warn("nats: a message without metadata; handing it back", "err", err)
		msg.NakWithDelay(r.backoff(1))
		return
	}
	log := r.log.With("stream_seq", md.Sequence.Stream, "delivery", md.NumDelivered)
	// Progress signals from now on: Submit may wait for a busy store.
	stopBeat := r.heartbeat(msg)
	defer stopBeat()
	err = r.checkSize(msg.Data())
	if err == nil {
		err = r.checkWorkspace(msg.Data())
	}
	var res api.SubmitResult
	if err == nil {
		id := msg.Headers().Get(jetq.HeaderID)
		r.fromNATS.add(id)
		res, err = r.svc.Submit(ctx, api.SubmitRequest{Body: msg.Data()})
		if err != nil || res.Duplicate || res.PatchID != id {
			r.fromNATS.take(id) // no submission event of it
		}
	}
	if err != nil && ctx.Err() != nil {
		msg.Nak()
		return
	}
	if err != nil && md.NumDelivered >= uint64(r.opts.Queue.MaxDeliver) {
		e := api.ErrorOf(err)
		log.Warn("nats: the patch was refused on its last delivery", "code", e.Code, "field", e.Field, "err", e.Message, "max_deliver", r.opts.Queue.MaxDeliver)
		raw := &jetstream.RawStreamMsg{Subject: msg.Subject(), Sequence: md.Sequence.Stream, Header: msg.Headers(), Data: msg.Data(), Time: md.Timestamp}
		if berr := r.bury(ctx, s, raw, md.NumDelivered, e.Message); berr != nil {
			// The next delivery is past MaxDeliver: the advisory's,
			// which the gateway handles.
			log.Warn("nats: dead letter; handing it back", "err", berr)
			msg.NakWithDelay(r.backoff(md.NumDelivered))
			return
		}
		// Acknowledged as done with, never delivered again: out of the
		// work queue.
		if err := msg.TermWithReason("dead letter: " + e.Message); err != nil {
			log.Warn("nats: end a dead letter's deliveries", "err", err)
		}
		return
	}
	if err != nil {
		e := api.ErrorOf(err)
		delay := r.backoff(md.NumDelivered)
		log.Warn("nats: the patch was refused; handing it back", "code", e.Code, "field", e.Field, "err", e.Message, "retry_in", delay.String(), "max_deliver", r.opts.Queue.MaxDeliver)
		msg.NakWithDelay(delay)
		return
	}
	log = log.With("id", res.PatchID)
	if res.Duplicate {
		log.Info("nats: a patch received before was delivered again; waiting for its outcome", "state", res.State)
	} else {
		log.Debug("nats: patch received", "state", res.State)
	}
	v, err := r.svc.Wait(ctx, res.PatchID)
	if err != nil {
		if ctx.Err() != nil {
			// Stopping: handed back for the next runner, whose journal
			// knows it (it waits for the outcome, never applies twice).
			msg.Nak()
			return
		}
		delay := r.backoff(md.NumDelivered)
		log.Warn("nats: waiting for the patch failed; handing it back", "err", err, "retry_in", delay.String())
		msg.NakWithDelay(delay)
		return
	}
	stopBeat()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		// Delivered again later: a Duplicate, acknowledged then.
		log.Warn("nats: the ack was not confirmed; the message will come again and be acknowledged", "state", v.State, "err", err)
		return
	}
	log.Debug("nats: patch done", "state", v.State)
}

// heartbeat tells JetStream every AckWait/3 that the message is still
// being worked on, until the returned function is called.
func (r *Runner) heartbeat(msg jetstream.Msg) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(max(r.opts.Queue.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					r.log.Debug("nats: progress signal", "err", err)
				}
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			close(done)
			<-stopped
		}
	}
}

// backoff is the delay before a message handed back for the n-th time
// comes again: from a thirtieth of AckWait (1 s by default), doubling,
// at most 5 minutes.
func (r *Runner) backoff(n uint64) time.Duration {
	d := max(r.opts.Queue.AckWait/30, 10*time.Millisecond)
	for i := uint64(1); i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// checkSize refuses a patch block over --max-body, as the webhook does.
func (r *Runner) checkSize(body []byte) error {
	if n := r.opts.MaxBodyBytes; n > 0 && int64(len(body)) > n {
		return api.Errorf(api.KindTooLarge, api.CodeBodyTooLarge, "", "the patch block is %d bytes, over the limit of %d (--max-body)", len(body), n)
	}
	return nil
}

// checkWorkspace refuses a block that names another workspace than this
// runner's ("workspace", which the gateway routes by and the local parser
// ignores): only a message published around the gateway carries one.
func (r *Runner) checkWorkspace(body []byte) error {
	var blk struct {
		Workspace any `json:"workspace"`
	}
	if json.Unmarshal(body, &blk) != nil || blk.Workspace == nil {
		return nil // the intake says what is wrong with the body
	}
	ws, ok := blk.Workspace.(string)
	if !ok {
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace", "Invalid field: workspace: must be a string")
	}
	if ws != r.ws {
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "workspace", "Invalid field: workspace: the block names workspace %q, and this runner serves %s", api.CutJSON(ws, 80), r.ws)
	}
	return nil
}
