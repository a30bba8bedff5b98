// Package natstest starts in-process NATS servers secured by natsconf's
// model (the users and permissions `patchd gateway --print-nats-config`
// writes) for the scale-out tests: one server, or a JetStream cluster of
// three whose configurations are the rendered ones.
package natstest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// Single starts one server with the model's users and shuts it down when
// t ends.
func Single(t testing.TB, m *natsconf.Model) *server.Server {
	t.Helper()
	opts, err := m.Options(natsconf.Server{Name: "n1", Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := natsserver.RunServer(opts)
	t.Cleanup(s.Shutdown)
	return s
}

// Cluster starts a JetStream cluster of n servers with the model's users,
// each configured as natsconf renders it (every server's routes list all
// n, itself included, as the one file of the documentation does), and
// waits until JetStream answers through each. They are shut down when t
// ends.
func Cluster(t testing.TB, m *natsconf.Model, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range n {
		ports[i] = freePort(t)
		routes[i] = natsconf.HostPort("127.0.0.1", ports[i])
	}
	servers := make([]*server.Server, n)
	for i := range n {
		opts, err := m.Options(natsconf.Server{
			Name: "n" + strconv.Itoa(i+1), Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), BcryptCost: 4,
			Cluster: &natsconf.Cluster{Name: "patchd", Listen: routes[i], Routes: routes},
		})
		if err != nil {
			t.Fatal(err)
		}
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %s not ready", s.Name())
		}
	}
	waitMeta(t, m, servers)
	return servers
}

// waitMeta polls until the cluster has a meta leader: an account info
// request through the gateway user succeeds.
func waitMeta(t testing.TB, m *natsconf.Model, servers []*server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := jetq.Connect(ctx, GatewayOptions(m, servers...))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(rctx)
		rcancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster has no JetStream meta leader: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// GatewayOptions connect as the model's gateway (password mode) to the
// servers.
func GatewayOptions(m *natsconf.Model, servers ...*server.Server) jetq.Options {
	return jetq.Options{URL: URLs(servers...), Name: "gateway", User: m.Gateway.Name, Password: m.Gateway.Password}
}

// RunnerOptions connect as the runner of ws (password mode), with its
// inbox prefix.
func RunnerOptions(m *natsconf.Model, ws string, servers ...*server.Server) jetq.Options {
	u := m.Runner(ws)
	return jetq.Options{URL: URLs(servers...), Name: u.Name, User: u.Name, Password: u.Password, InboxPrefix: jetq.RunnerInbox(ws)}
}

// URLs joins the servers' client URLs with commas.
func URLs(servers ...*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// StreamLeader is the server that leads stream's group, or nil.
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string, servers []*server.Server) *server.Server {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return nil
	}
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			return s
		}
	}
	return nil
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
