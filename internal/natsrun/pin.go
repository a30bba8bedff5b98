package natsrun

import (
	"context"
	"time"

	"github.com/patchd/patchd/internal/jetq"
)

// pinHeader carries the pin of the runner a message was delivered to.
const pinHeader = "Nats-Pin-Id"

// setPinned records whether NATS pins the workspace's consumer to this
// runner (it delivered a message with a pin, or refused a pull with a pin
// that lapsed), and logs when this runner becomes the active one.
func (r *Runner) setPinned(on bool) {
	if r.pinned.Swap(on) == on {
		return
	}
	if on {
		if r.standby.Swap(false) {
			r.rolesChanged()
		}
		r.log.Info("nats: this runner is the workspace's active one (pinned): the queue's patches come here")
		r.askStatus()
		return
	}
	r.log.Info("nats: this runner's pin on the workspace lapsed or was given up")
}

// checkStandby asks the server which runner the consumer is pinned to
// (at most once a second unless now): another one makes this runner a
// standby, none makes it a candidate for the next patch.
func (r *Runner) checkStandby(ctx context.Context, s *setup, now bool) {
	if !now && time.Since(r.lastCheck) < time.Second {
		return
	}
	r.lastCheck = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.cons.Info(cctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("nats: look up the workspace's consumer", "err", err)
		}
		return
	}
	other := false
	for _, g := range info.PriorityGroups {
		if g.Group == jetq.PriorityGroup && g.PinnedClientID != "" && !r.pinned.Load() {
			other = true
		}
	}
	if r.standby.Swap(other) == other {
		return
	}
	r.rolesChanged()
	if other {
		r.log.Info("nats: another runner of the workspace is active (pinned); this one is a standby and takes over when that one stops or stops pulling for --ack-wait")
	} else {
		r.log.Info("nats: no runner holds the workspace; this one may take the next patch")
	}
}

// unpin gives the pin up at stop, so that a standby (or this daemon's
// successor) takes the next patch at once rather than after --ack-wait.
func (r *Runner) unpin(s *setup) {
	if !r.pinned.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.work.UnpinConsumer(ctx, jetq.ConsumerName(r.ws), jetq.PriorityGroup); err != nil {
		r.log.Warn("nats: give up the pin on the workspace (a standby takes over after --ack-wait)", "err", err)
		return
	}
	r.pinned.Store(false)
}

// rolesChanged tells ctlLoop that standby changed.
func (r *Runner) rolesChanged() {
	select {
	case r.roles <- struct{}{}:
	default:
	}
}
