// Package jetqtest starts in-process NATS servers with JetStream for the
// tests of jetq, gateway and natsrun: each on a free port of 127.0.0.1,
// its store in the test's temporary directory, shut down with the test.
package jetqtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/jetq"
)

// Server starts a NATS server with JetStream storing under a new
// temporary directory of t, and shuts it down when t ends.
func Server(t testing.TB) *server.Server {
	t.Helper()
	return ServerAt(t, t.TempDir(), -1)
}

// ServerAt starts a NATS server with JetStream storing under dir,
// listening on port (-1: a free one), and shuts it down when t ends: a
// test restarts a server over the same dir with the port of the first.
func ServerAt(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	opts := test.DefaultTestOptions
	opts.Port = port
	opts.JetStream = true
	opts.StoreDir = dir
	s := test.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects to s (through jetq.Connect) and ensures the streams
// and buckets; the connection is closed when t ends.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := jetq.Connect(ctx, jetq.Options{URL: s.ClientURL(), Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := jetq.Ensure(ctx, js, jetq.EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}
