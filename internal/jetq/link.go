package jetq

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Link is a connection to NATS with its JetStream context, and the
// embedded server it runs on, if any (Embed).
type Link struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	// Server is the embedded server; nil for an external one.
	Server *server.Server
}

// Dial connects to an external NATS (Connect).
func Dial(ctx context.Context, o Options) (*Link, error) {
	nc, js, err := Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Link{Conn: nc, JS: js}, nil
}

// embedReady bounds how long Embed waits for the server to accept
// connections.
const embedReady = 30 * time.Second

// Embed starts a NATS server in this process with opts (JetStream on,
// its StoreDir set: see internal/natsconf's Model.Options) and connects
// to it without a socket (nats.InProcessServer) with client's
// credentials. Clients of other processes connect on opts' listener.
// Close shuts it down.
func Embed(ctx context.Context, opts *server.Options, client Options) (*Link, error) {
	if !opts.JetStream || opts.StoreDir == "" {
		return nil, fmt.Errorf("nats: embedded server: JetStream with a store directory is required")
	}
	opts.NoSigs = true
	// A password's bcrypt check can take longer than the server's short
	// first PING, which a client still waiting for its connect's PONG
	// takes for an error.
	opts.DisableShortFirstPing = true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: embedded server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(embedReady) {
		s.Shutdown()
		return nil, fmt.Errorf("nats: embedded server: not ready within %s (is %s:%d free?)", embedReady, opts.Host, opts.Port)
	}
	client.InProcess = s
	nc, js, err := Connect(ctx, client)
	if err != nil {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, err
	}
	return &Link{Conn: nc, JS: js, Server: s}, nil
}

// ClientURL is where other processes reach the embedded server, "" for
// an external one.
func (l *Link) ClientURL() string {
	if l.Server == nil {
		return ""
	}
	return l.Server.ClientURL()
}

// Close drains the connection (what was published is flushed) and shuts
// the embedded server down.
func (l *Link) Close() {
	if err := l.Conn.Drain(); err != nil {
		l.Conn.Close()
	}
	for i := 0; i < 200 && !l.Conn.IsClosed(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Server != nil {
		l.Server.Shutdown()
		l.Server.WaitForShutdown()
	}
}
