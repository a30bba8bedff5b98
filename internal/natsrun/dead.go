package natsrun

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// bury copies a work message to patchd.dead.<ws> with its headers and
// says so: the patch's view failed with code dead_letter (why, the last
// refusal, when known), and its event. Each step may be done again (after
// a crash) to no harm: the copy has the work message's dedup id, the view
// and the event the same content and dedup id.
func (r *Runner) bury(ctx context.Context, s *setup, raw *jetstream.RawStreamMsg, deliveries uint64, why string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, jetq.DeadLetterMsg(r.ws, raw, deliveries)); err != nil {
		return fmt.Errorf("publish the dead letter: %w", err)
	}
	id := jetq.PatchID(raw)
	msg := fmt.Sprintf("delivered %d times without an outcome", deliveries)
	if why != "" {
		msg += " (the last refusal: " + api.CutJSON(why, 2000) + ")"
	}
	msg += "; kept on " + jetq.DeadSubject(r.ws)
	r.log.Error("nats: dead letter: "+msg, "id", id, "stream_seq", raw.Sequence)
	if id == "" {
		return nil
	}
	now := time.Now().UTC()
	received := jetq.Received(raw)
	v := jetq.DeadView(r.ws, id, msg, raw, received, now)
	if !r.putView(ctx, s, v) {
		return ctx.Err()
	}
	em := jetq.DeadEventMsg(r.ws, id, msg, raw.Sequence, now)
	if _, err := s.js.PublishMsg(ctx, em); err != nil {
		return fmt.Errorf("publish the dead letter's event: %w", err)
	}
	r.askStatus()
	return nil
}
