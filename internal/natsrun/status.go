package natsrun

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/patchd/patchd/internal/jetq"
)

// statusDebounce is how long a put of the workspace's record waits after
// an event for the events that follow it.
const statusDebounce = 500 * time.Millisecond

// askStatus asks for the workspace's record to be put soon.
func (r *Runner) askStatus() {
	select {
	case r.statusReq <- struct{}{}:
	default:
	}
}

// statusLoop puts the workspace's record (jetq.WorkspaceRecord) at
// start, every StatusEvery, and after events (debounced); a standby puts
// none.
func (r *Runner) statusLoop(ctx context.Context, s *setup) {
	host, _ := os.Hostname()
	t := time.NewTicker(r.opts.StatusEvery)
	defer t.Stop()
	for {
		st, err := r.svc.Status(ctx)
		// A standby's record would replace the active runner's.
		if err == nil && !r.standby.Load() {
			st.NATS = nil // the gateway knows how it reaches NATS
			rec := jetq.WorkspaceRecord{Name: r.ws, Runner: jetq.RunnerInfo{Host: host, PID: os.Getpid(), Instance: r.opts.Instance},
				Status: st, UpdatedAt: time.Now().UTC()}
			b, _ := json.Marshal(rec)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := s.spaces.Put(cctx, r.ws, b); err != nil && ctx.Err() == nil {
				r.log.Debug("nats: put the workspace's record", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.statusReq:
			if !jetq.Sleep(ctx, statusDebounce) {
				return
			}
		}
	}
}
