package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
)

// Preview implements api.Service: the block is checked as Submit checks
// it, then previewed by its workspace's runner.
func (s *Service) Preview(ctx context.Context, req api.PreviewRequest) (api.PreviewResult, error) {
	_, ws, err := s.intake(ctx, req.Body)
	if err != nil {
		return api.PreviewResult{}, err
	}
	var res api.PreviewResult
	err = s.request(ctx, ws, jetq.OpPreview, req, &res)
	return res, err
}

// Revert implements api.Service: by the patch's workspace's runner.
func (s *Service) Revert(ctx context.Context, id string) (api.PatchView, error) {
	return s.byID(ctx, jetq.OpRevert, id)
}

// Drop implements api.Service: by the patch's workspace's runner.
func (s *Service) Drop(ctx context.Context, id string) (api.PatchView, error) {
	return s.byID(ctx, jetq.OpDrop, id)
}

func (s *Service) byID(ctx context.Context, op, id string) (api.PatchView, error) {
	v, err := s.find(ctx, id)
	if err != nil {
		return api.PatchView{}, err
	}
	var res api.PatchView
	if err := s.request(ctx, v.Workspace, op, jetq.IDRequest{ID: id}, &res); err != nil {
		return api.PatchView{}, err
	}
	res.Workspace = v.Workspace
	return res, nil
}

// ReadFile implements api.Service: by the workspace's runner.
func (s *Service) ReadFile(ctx context.Context, req api.ReadFileRequest) (api.FileText, error) {
	ws, err := s.filesWorkspace(ctx)
	if err != nil {
		return api.FileText{}, err
	}
	var res api.FileText
	err = s.request(ctx, ws, jetq.OpReadFile, req, &res)
	return res, err
}

// ListFiles implements api.Service: by the workspace's runner.
func (s *Service) ListFiles(ctx context.Context, req api.ListFilesRequest) (api.FileList, error) {
	ws, err := s.filesWorkspace(ctx)
	if err != nil {
		return api.FileList{}, err
	}
	var res api.FileList
	err = s.request(ctx, ws, jetq.OpListFiles, req, &res)
	return res, err
}

// filesWorkspace is the workspace whose files a request reads: s's, or
// the only one there is.
func (s *Service) filesWorkspace(ctx context.Context) (string, error) {
	if s.ws != "" {
		return s.ws, nil
	}
	all, err := s.Workspaces(ctx)
	if err != nil {
		return "", err
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return "", api.Errorf(api.KindInvalid, api.CodeFieldMissing, "workspace",
		"Missing required field: workspace: %d workspaces exist; read files at /ws/<name>/file and /ws/<name>/files", len(all))
}

// request asks ws's runner to do op and reads its answer into res. It
// waits as long as ctx allows, at most the CtlTimeout; no runner
// listening, or none answering in time, is Kind unavailable, code
// runner_unavailable.
func (s *Service) request(ctx context.Context, ws, op string, req, res any) error {
	if err := s.exists(ctx, ws); err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return api.Errorf(api.KindInternal, api.CodeInternal, "", "encode the %s request: %v", op, err)
	}
	rctx, cancel := context.WithTimeout(ctx, s.ctlWait)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, jetq.CtlSubject(ws, op), body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &api.Error{Kind: api.KindUnavailable, Code: CodeRunnerUnavailable, Field: "workspace",
			Message: fmt.Sprintf("no runner of workspace %s is connected to do %s; try again when one is", ws, op), Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &api.Error{Kind: api.KindUnavailable, Code: CodeRunnerUnavailable, Field: "workspace",
			Message: fmt.Sprintf("the runner of workspace %s did not answer %s in time", ws, op), Err: err}
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return unavailable(err, op+" in workspace "+ws)
	}
	return jetq.DecodeReply(m.Data, res)
}
