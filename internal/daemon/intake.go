package daemon

import (
	"fmt"
	"log/slog"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/sandbox"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// intake is the patch pipeline: token, store, workspace and worker, and
// the service over them that every door calls.
type intake struct {
	token  string
	store  *store.Store
	ws     *workspace.Workspace
	worker *worker.Worker
	svc    *patchsvc.Service
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
	ws, err := workspace.OpenProtected(cfg.Workspace, protected(cfg))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.QueueDir(), store.Options{Logger: log, EventsPath: cfg.EventsPath(), EventsMaxBytes: cfg.EventsMaxBytes()})
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	in.ws, in.store = ws, st
	in.worker = worker.New(worker.Options{Store: st, Workspace: ws, Logger: log, SummariesDir: cfg.SummariesDir,
		Checks: cfg.Checks, Git: cfg.Git, Protect: protectFromChecks(cfg), Limits: worker.Limits{PlanTimeout: cfg.PlanTimeout, MaxEdits: cfg.MaxEdits,
			PlanTimeoutSetting: config.SettingPlanTimeout, MaxEditsSetting: config.SettingMaxEdits,
			Limits: patch.Limits{MaxFileBytes: cfg.MaxFileBytes, MaxPatchBytes: cfg.MaxPatchContent,
				FileSetting: config.SettingMaxFileSize, PatchSetting: config.SettingMaxPatchContent}}})
	in.svc = patchsvc.New(patchsvc.Options{Store: st, Workspace: ws, Worker: in.worker, Logger: log,
		MaxEdits: cfg.MaxEdits, MaxEditsSetting: config.SettingMaxEdits, SummariesDir: cfg.SummariesDir,
		Private: []patchsvc.Private{{Path: cfg.StateDir, Name: "<state dir>"}}})
	for _, c := range cfg.Checks {
		if c.Sandbox {
			// Said at the start, not only in each patch that fails.
			if err := sandbox.Available(); err != nil {
				log.Error("checks ask for the sandbox, which this system cannot provide: every patch they apply to will fail", "err", err)
			}
			break
		}
	}
	return in, nil
}

// protected lists patchd's own paths, which no patch may read or write
// under any name: the state dir (token, queue, logs, the default config
// file), the config file wherever it is, and the summaries. The config
// check refused a state dir that is the workspace or above it; summaries
// may go to the workspace's root, or above it, and are then not protected.
func protected(cfg *config.Config) []workspace.Protected {
	ps := []workspace.Protected{{Path: cfg.StateDir, What: "patchd's state directory"}}
	if cfg.ConfigFile != "" {
		ps = append(ps, workspace.Protected{Path: cfg.ConfigFile, What: "patchd's config file"})
	}
	return append(ps, workspace.Protected{Path: cfg.SummariesDir, What: "patchd's summaries directory", Optional: true})
}

func (in *intake) close() {
	in.store.Close()
	in.ws.Close()
}

// protectFromChecks lists what a sandboxed check may not write even when it
// lies in the workspace: patchd's state (its token, journal and log), the
// config file that defines the checks, and the PID file an old watchdog
// may act on.
func protectFromChecks(cfg *config.Config) []string {
	out := []string{cfg.StateDir}
	for _, p := range []string{cfg.ConfigFile, cfg.PIDFile} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
