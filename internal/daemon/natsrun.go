package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/natsrun"
)

// runnerStopWait bounds how long a stop waits for the runner to hand back
// the patch it waits for and drain its connection.
const runnerStopWait = 5 * time.Second

// startRunner starts the NATS runner (--queue) over the stack's service
// and has the service report it in its Status; nothing without a queue.
// Only the active instance gets here: a standby never consumes. The
// connection is made in the background; NATS being down leaves the
// daemon serving.
func (st *stack) startRunner(cfg *config.Config, id string, log *slog.Logger) error {
	if !cfg.Queue.On() {
		return nil
	}
	r, err := natsrun.Start(natsrun.Options{Service: st.in.svc, Queue: cfg.Queue, StateDir: cfg.StateDir, Instance: id, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes})
	if err != nil {
		return err
	}
	st.runner = r
	st.in.svc.SetNATS(r.Status)
	log.Info("runner: taking workspace's patches from NATS", "queue", r.Status().URL, "workspace_name", cfg.Queue.Workspace,
		"max_deliver", cfg.Queue.MaxDeliver, "ack_wait", cfg.Queue.AckWait.String())
	return nil
}

// stopRunner stops the runner; the patch it waited for goes back to the
// queue for whoever serves next (its journal knows the patch).
func (st *stack) stopRunner() {
	if st.runner == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), runnerStopWait)
	defer cancel()
	st.runner.Stop(ctx)
	st.in.svc.SetNATS(nil)
}
