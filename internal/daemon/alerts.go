package daemon

import (
	"log/slog"
	"path/filepath"

	"github.com/patchd/patchd/internal/alert"
	"github.com/patchd/patchd/internal/config"
)

// openAlerts opens the notification outbox (--notify) under the state
// dir's notify/ and has the service report it in its Status; nil when no
// receiver is configured. It starts delivering at once: its goroutines
// follow the service's events and never hold up the worker or the store.
func (st *stack) openAlerts(cfg *config.Config, log *slog.Logger) error {
	if len(cfg.Notify) == 0 {
		return nil
	}
	ob, err := alert.New(alert.Options{Dir: filepath.Join(cfg.StateDir, "notify"), Service: st.in.svc, Receivers: cfg.Notify, Logger: log})
	if err != nil {
		return err
	}
	st.alerts = ob
	st.in.svc.SetNotify(ob.Status)
	ob.Start()
	for _, n := range cfg.Notify {
		log.Info("notifying", "receiver", n.Redacted(), "kind", n.Kind, "events", n.Events, "signed", n.Secret != "")
	}
	return nil
}

// closeAlerts stops the deliveries and closes the outbox; what is pending
// waits there for the next start.
func (st *stack) closeAlerts(log *slog.Logger) {
	if st.alerts == nil {
		return
	}
	if err := st.alerts.Close(); err != nil {
		log.Warn("notify: close the outbox", "err", err)
	}
}
