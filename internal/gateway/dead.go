package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// advisory is the part of the server's max-deliveries advisory read here
// (io.nats.jetstream.advisory.v1.max_deliver).
type advisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// DeadLetters makes dead letters of the work messages the server's
// max-deliveries advisories name, for every workspace, until ctx ends: a
// message whose every delivery found a runner that died holding it (a
// runner buries the ones its daemon refused itself, from the delivered
// message). It reads the message by its stream sequence, copies it with
// its headers to patchd.dead.<ws>, puts its view failed with code
// dead_letter, publishes that event and removes the message from the work
// queue: the grants this needs reach every workspace, so no runner has
// them (natsconf). The advisories wait on PATCHD_ADVISORIES (durable
// consumer "dead") while no gateway runs. Handling an advisory again, or
// one of a message a runner buried already, adds no dead letter and no
// event: a message gone is done, a view already failed dead_letter for
// the same message is only removed, and the copies carry dedup ids.
func (s *Service) DeadLetters(ctx context.Context) {
	var cons jetstream.Consumer
	for delay := 250 * time.Millisecond; cons == nil; delay = min(2*delay, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := s.js.CreateOrUpdateConsumer(cctx, jetq.StreamAdvisories, jetstream.ConsumerConfig{
			Durable:       jetq.DeadConsumer,
			Description:   "patchd gateway: the dead letters of every workspace",
			FilterSubject: jetq.SubjectAdvisories,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait:       30 * time.Second,
		})
		cancel()
		if err == nil {
			cons = c
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("nats: the dead letters' consumer; trying again", "consumer", jetq.DeadConsumer, "err", err, "retry_in", delay.String())
		if !jetq.Sleep(ctx, delay) {
			return
		}
	}
	work, err := s.js.Stream(ctx, jetq.StreamWork)
	for err != nil {
		if ctx.Err() != nil || !jetq.Sleep(ctx, time.Second) {
			return
		}
		work, err = s.js.Stream(ctx, jetq.StreamWork)
	}
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Debug("nats: pull an advisory", "err", err)
				if !jetq.Sleep(ctx, time.Second) {
					return
				}
			}
			continue
		}
		var adv advisory
		jerr := json.Unmarshal(msg.Data(), &adv)
		ws, ok := strings.CutPrefix(adv.Consumer, jetq.ConsumerPrefix)
		ok = ok && jerr == nil
		if !ok || adv.Stream != jetq.StreamWork || jetq.CheckWorkspace(ws) != nil || adv.StreamSeq == 0 {
			s.log.Warn("nats: an advisory that is not a workspace consumer's max-deliveries advisory; dropped", "subject", msg.Subject())
			msg.Term()
			continue
		}
		if err := s.buryAdvised(ctx, work, ws, adv); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("nats: dead letter; trying again", "workspace", ws, "stream_seq", adv.StreamSeq, "err", err)
				msg.NakWithDelay(time.Second)
			} else {
				msg.Nak()
			}
			continue
		}
		msg.Ack()
	}
}

// buryAdvised makes the message an advisory names a dead letter: read
// from the work queue by its sequence, buried unless it was, removed.
func (s *Service) buryAdvised(ctx context.Context, work jetstream.Stream, ws string, adv advisory) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := work.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Buried before (Term'd by its runner, or removed here), or
		// acknowledged in the end.
		return nil
	}
	if err != nil {
		return fmt.Errorf("read message %d of %s: %w", adv.StreamSeq, jetq.StreamWork, err)
	}
	if raw.Subject != jetq.WorkSubject(ws) {
		return fmt.Errorf("message %d of %s is on %s, not on %s", adv.StreamSeq, jetq.StreamWork, raw.Subject, jetq.WorkSubject(ws))
	}
	if err := s.bury(ctx, ws, raw, adv.Deliveries); err != nil {
		return err
	}
	if err := work.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove message %d from %s: %w", adv.StreamSeq, jetq.StreamWork, err)
	}
	return nil
}

// bury copies a work message to patchd.dead.<ws> with its headers, puts
// its view failed with code dead_letter and publishes that event, as the
// runner does for a patch its daemon refused. A message whose view says
// it was buried already (its runner buried it and died before its Term
// was confirmed, or a round here ended halfway) is not copied again; its
// event goes out with the dedup id the runner's had.
func (s *Service) bury(ctx context.Context, ws string, raw *jetstream.RawStreamMsg, deliveries uint64) error {
	id := jetq.PatchID(raw)
	received := jetq.Received(raw)
	msg := fmt.Sprintf("delivered %d times without an outcome; kept on %s", deliveries, jetq.DeadSubject(ws))
	now := time.Now().UTC()
	buried := false
	if id != "" {
		v, ok, err := s.view(ctx, ws, id)
		if err != nil {
			return err
		}
		buried = ok && v.State == api.StateFailed && v.Code == jetq.CodeDeadLetter && v.ReceivedAt.Equal(received)
		if buried {
			msg, now = v.Error, v.FinishedAt
		}
	}
	if !buried {
		if _, err := s.js.PublishMsg(ctx, jetq.DeadLetterMsg(ws, raw, deliveries)); err != nil {
			return fmt.Errorf("publish the dead letter: %w", err)
		}
		s.log.Error("nats: dead letter: "+msg, "workspace", ws, "id", id, "stream_seq", raw.Sequence)
	}
	if id == "" {
		return nil
	}
	if !buried {
		v := jetq.DeadView(ws, id, msg, raw, received, now)
		b, err := jetq.EncodeView(v)
		if err != nil {
			return fmt.Errorf("encode the dead letter's view: %w", err)
		}
		if key := jetq.PatchKey(ws, id); jetq.ValidKey(key) {
			if _, err := s.patches.Put(ctx, key, b); err != nil {
				return fmt.Errorf("put the dead letter's view: %w", err)
			}
		}
	}
	em := jetq.DeadEventMsg(ws, id, msg, raw.Sequence, now)
	if _, err := s.js.PublishMsg(ctx, em); err != nil {
		return fmt.Errorf("publish the dead letter's event: %w", err)
	}
	return nil
}
