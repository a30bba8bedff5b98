package natsrun

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// ctlTimeout bounds one control request (the gateway waits 25 s at most);
// ctlParallel is how many are answered at once.
const (
	ctlTimeout  = 25 * time.Second
	ctlParallel = 8
)

// ctlLoop answers the workspace's control requests while this runner is
// not a standby: a standby's copy of the workspace is not the one the
// gateway's previews, reverts and file reads are about, so it leaves the
// queue group ctl-<ws> to the active runner.
func (r *Runner) ctlLoop(ctx context.Context, nc *nats.Conn) {
	var sub *nats.Subscription
	defer func() {
		if sub != nil {
			sub.Unsubscribe()
		}
	}()
	for {
		switch standby := r.standby.Load(); {
		case !standby && sub == nil:
			var err error
			if sub, err = r.serveCtl(ctx, nc); err != nil {
				r.log.Error("nats: control requests are not answered", "err", err)
			}
		case standby && sub != nil:
			if err := sub.Unsubscribe(); err != nil {
				r.log.Warn("nats: a standby still answers control requests", "err", err)
			}
			sub = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-r.roles:
		}
	}
}

// serveCtl answers the workspace's control requests (patchd.ctl.<ws>.<op>,
// queue group ctl-<ws>) by calling the service; a request over the limit
// of those answered at once is refused as busy.
func (r *Runner) serveCtl(ctx context.Context, nc *nats.Conn) (*nats.Subscription, error) {
	slots := make(chan struct{}, ctlParallel)
	return nc.QueueSubscribe(jetq.CtlWildcard(r.ws), jetq.CtlQueue(r.ws), func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			m.Respond(jetq.EncodeReply(nil, api.Errorf(api.KindUnavailable, api.CodeWorkerBusy, "", "the runner of workspace %s answers %d requests already; try again", r.ws, ctlParallel)))
			return
		}
		r.ctl.Add(1)
		go func() {
			defer r.ctl.Done()
			defer func() { <-slots }()
			cctx, cancel := context.WithTimeout(ctx, ctlTimeout)
			defer cancel()
			op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
			res, err := r.control(cctx, op, m.Data)
			if err := m.Respond(jetq.EncodeReply(res, err)); err != nil {
				r.log.Debug("nats: answer a control request", "op", op, "err", err)
			}
		}()
	})
}

// control decodes one request and makes its one call to the service.
func (r *Runner) control(ctx context.Context, op string, data []byte) (any, error) {
	bad := func(err error) error {
		return api.Errorf(api.KindInvalid, api.CodeMalformedJSON, "", "control request %s: %v", op, err)
	}
	switch op {
	case jetq.OpPreview:
		var req api.PreviewRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, bad(err)
		}
		if err := r.checkSize(req.Body); err != nil {
			return nil, err
		}
		return r.svc.Preview(ctx, req)
	case jetq.OpRevert, jetq.OpDrop:
		var req jetq.IDRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, bad(err)
		}
		if req.ID == "" {
			return nil, api.Errorf(api.KindInvalid, api.CodeFieldMissing, "id", "control request %s: id missing", op)
		}
		if op == jetq.OpDrop {
			return r.svc.Drop(ctx, req.ID)
		}
		return r.svc.Revert(ctx, req.ID)
	case jetq.OpReadFile:
		var req api.ReadFileRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, bad(err)
		}
		return r.svc.ReadFile(ctx, req)
	case jetq.OpListFiles:
		var req api.ListFilesRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, bad(err)
		}
		return r.svc.ListFiles(ctx, req)
	}
	return nil, api.Errorf(api.KindNotFound, api.CodeFieldInvalid, "op", "control request: unknown operation %q (%s)", op, strings.Join(jetq.Ops(), ", "))
}
