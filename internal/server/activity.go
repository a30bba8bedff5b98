package server

import (
	"context"
	"sync/atomic"
	"time"
)

// activity counts webhook requests between a fully read body and the
// answer: the part that takes the CPU (validation) and waits for the
// journal. A request whose body is still arriving is not counted, so a
// slow or stalled sender cannot make the count stay up.
type activity struct {
	n    atomic.Int64
	idle chan struct{} // a token when n dropped to 0; may be stale
}

func (a *activity) enter() { a.n.Add(1) }

func (a *activity) leave() {
	if a.n.Add(-1) == 0 {
		select {
		case a.idle <- struct{}{}:
		default:
		}
	}
}

// WaitWebhooksIdle returns once no webhook request is being validated or
// stored, or after max, or when ctx ends, whichever comes first; at once
// when none is. The worker calls it before each patch so that a burst of
// submissions is acknowledged first and applied in its gaps, while max
// bounds how long applying can be put off. One caller at a time.
func (s *Server) WaitWebhooksIdle(ctx context.Context, max time.Duration) {
	a := &s.act
	if a.n.Load() == 0 {
		return
	}
	t := time.NewTimer(max)
	defer t.Stop()
	for a.n.Load() > 0 {
		select {
		case <-a.idle:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
