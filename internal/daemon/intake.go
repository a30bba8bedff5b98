package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// intake is the patch pipeline: token, store, workspace and worker.
type intake struct {
	token  string
	store  *store.Store
	ws     *workspace.Workspace
	worker *worker.Worker
}

func openIntake(cfg *config.Config, log *slog.Logger) (*intake, error) {
	in := &intake{}
	if !cfg.NoAuth {
		tok, err := auth.LoadOrCreateToken(cfg.TokenPath())
		if err != nil {
			return nil, err
		}
		in.token = tok
	} else {
		log.Warn("webhook authentication is off (--no-auth); only loopback clients can reach it")
	}
	var deny []string
	if rel, err := filepath.Rel(cfg.Workspace, cfg.StateDir); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
		deny = append(deny, filepath.ToSlash(rel))
	}
	ws, err := workspace.Open(cfg.Workspace, deny...)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.QueueDir(), store.Options{Logger: log, EventsPath: cfg.EventsPath()})
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	in.ws, in.store = ws, st
	in.worker = worker.New(worker.Options{Store: st, Workspace: ws, Logger: log, SummariesDir: cfg.SummariesDir,
		Checks: cfg.Checks, Git: cfg.Git})
	return in, nil
}

func (in *intake) close() {
	in.store.Close()
	in.ws.Close()
}
