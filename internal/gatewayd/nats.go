package gatewayd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// Embedded configures the NATS server `patchd gateway --embedded-nats`
// runs in its own process.
type Embedded struct {
	// On starts it.
	On bool
	// Listen is where runners connect, HOST:PORT (--nats-listen); ""
	// is DefaultNATSListen.
	Listen string
	// StoreDir is JetStream's directory (--nats-store); "" is
	// <state dir>/nats.
	StoreDir string
	// Auth is how its users prove who they are.
	Auth natsconf.Mode
	// BcryptCost is the cost of the password hashes (bcrypt's default
	// when 0); tests lower it.
	BcryptCost int
}

// DefaultNATSListen is where the embedded server listens for runners.
const DefaultNATSListen = "127.0.0.1:4222"

// StoreDir is the embedded server's JetStream directory.
func (e Embedded) storeDir(stateDir string) string {
	if e.StoreDir != "" {
		return e.StoreDir
	}
	return filepath.Join(stateDir, "nats")
}

func (e Embedded) listen() string {
	if e.Listen != "" {
		return e.Listen
	}
	return DefaultNATSListen
}

// connect reaches NATS: an external server, or the embedded one started
// here with the credentials of natsconf (generated into the state
// directory, 0600, the first time; a runner user for each of
// o.Workspaces).
func connect(ctx context.Context, o Options, log *slog.Logger) (*jetq.Link, error) {
	if !o.Embedded.On {
		opts := o.NATS
		opts.Name = "patchd-gateway"
		return jetq.Dial(ctx, opts)
	}
	if _, _, err := net.SplitHostPort(o.Embedded.listen()); err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", o.Embedded.listen(), err)
	}
	dir := natsconf.CredentialsDir(o.Config.StateDir)
	m, err := natsconf.LoadOrGenerate(dir, o.Embedded.Auth, o.Workspaces)
	if err != nil {
		return nil, err
	}
	srv, err := m.Options(natsconf.Server{Name: "patchd-gateway", Listen: o.Embedded.listen(),
		StoreDir: o.Embedded.storeDir(o.Config.StateDir), BcryptCost: o.Embedded.BcryptCost})
	if err != nil {
		return nil, err
	}
	client := jetq.Options{Name: "patchd-gateway", User: m.Gateway.Name, Password: m.Gateway.Password}
	if m.Gateway.Seed != nil {
		client.User, client.Password = "", ""
		client.NKeyFile = filepath.Join(dir, m.Gateway.File())
	}
	link, err := jetq.Embed(ctx, srv, client)
	if err != nil {
		return nil, err
	}
	log.Info("embedded NATS serving", "address", link.ClientURL(), "store", o.Embedded.storeDir(o.Config.StateDir), "credentials", dir)
	return link, nil
}
