package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/config"
)

// TestGatewayFlags: the gateway's flags are checked before anything runs,
// each refusal naming the flag.
func TestGatewayFlags(t *testing.T) {
	cfg := &config.Config{StateDir: t.TempDir()}
	for _, tt := range []struct {
		g    gatewayFlags
		want string
	}{
		{gatewayFlags{replicas: 1, dedup: 120e9}, "--nats URL or --embedded-nats"},
		{gatewayFlags{nats: "nats://a:4222", embedded: true, replicas: 1, dedup: 120e9}, "give one"},
		{gatewayFlags{embedded: true, replicas: 3, dedup: 120e9}, "--replicas"},
		{gatewayFlags{nats: "nats://a:4222", replicas: 0, dedup: 120e9}, "--replicas"},
		{gatewayFlags{nats: "nats://a:4222", replicas: 1, dedup: 0}, "--dedup-window"},
		{gatewayFlags{nats: "nats://u:p@a:4222", replicas: 1, dedup: 120e9}, "user or password"},
		{gatewayFlags{nats: "http://a", replicas: 1, dedup: 120e9}, "--nats"},
		{gatewayFlags{nats: "nats://a:4222", workspaces: "web,a.b", replicas: 1, dedup: 120e9}, "--workspaces"},
		{gatewayFlags{embedded: true, auth: "ldap", replicas: 1, dedup: 120e9}, "--nats-auth"},
	} {
		if _, err := tt.g.options(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.g, err, tt.want)
		}
	}
	pw := t.TempDir() + "/pw"
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	for _, q := range []config.Queue{{User: "gateway"}, {PasswordFile: pw}, {User: "g", PasswordFile: pw, Creds: pw}, {User: "g", PasswordFile: pw + ".missing"}} {
		c := &config.Config{StateDir: cfg.StateDir, Queue: q}
		if _, err := (&gatewayFlags{nats: "nats://a:4222", replicas: 1, dedup: 120e9}).options(c); err == nil || !strings.Contains(err.Error(), "--nats-") {
			t.Errorf("credentials %+v: %v, want an error naming the flag", q, err)
		}
	}
	c := &config.Config{StateDir: cfg.StateDir, Queue: config.Queue{User: "gateway", PasswordFile: pw}}
	if o, err := (&gatewayFlags{nats: "nats://a:4222", replicas: 1, dedup: 120e9}).options(c); err != nil || o.NATS.User != "gateway" || o.NATS.Password != "s3cret" {
		t.Errorf("credentials: %+v, %v", o.NATS, err)
	}
	o, err := (&gatewayFlags{nats: "nats://a:4222, nats://b:4222", workspaces: " web , api,", replicas: 3, dedup: 60e9}).options(cfg)
	if err != nil || o.NATS.URL != "nats://a:4222,nats://b:4222" || len(o.Workspaces) != 2 || o.Replicas != 3 {
		t.Fatalf("options = %+v, %v", o, err)
	}
}

// TestPrintNATSConfigCluster: --print-nats-config with --nats-routes
// prints the one configuration the servers of a cluster share: routes to
// each, the name from $SERVER_NAME, the users of --workspaces; the
// secrets stay under the state dir and out of the output. A route that
// is not HOST:PORT is refused naming the flag.
func TestPrintNATSConfigCluster(t *testing.T) {
	state := t.TempDir()
	v := vars{"HOME": t.TempDir()}
	r := run(t.Context(), v, "", "gateway", "--state-dir", state, "--print-nats-config", "--workspaces", "api,web",
		"--nats-listen", "0.0.0.0:4222", "--nats-store", "/data/jetstream", "--nats-routes", "n1:6222, n2:6222,n3:6222")
	if r.code != ExitOK {
		t.Fatalf("print: %s", r)
	}
	for _, want := range []string{"server_name: $SERVER_NAME\n", `listen: "0.0.0.0:4222"`, `store_dir: "/data/jetstream"`,
		`listen: "0.0.0.0:6222"`, `@n1:6222"`, `@n2:6222"`, `@n3:6222"`, `user: "run-api"`, `user: "run-web"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the configuration lacks %q:\n%s", want, r.stdout)
		}
	}
	pw, err := os.ReadFile(state + "/nats-credentials/run-api.password")
	if err != nil || strings.Contains(r.stdout, strings.TrimSpace(string(pw))) {
		t.Errorf("run-api's password: %v, or in the output", err)
	}
	if r := run(t.Context(), v, "", "gateway", "--state-dir", state, "--print-nats-config", "--nats-routes", "n1"); r.code != ExitUsage || !strings.Contains(r.stderr, "--nats-routes") {
		t.Errorf("a route without a port: %s, want exit 2 naming --nats-routes", r)
	}
	if r := run(t.Context(), v, "", "gateway", "--state-dir", state, "--embedded-nats", "--nats-routes", "n1:6222"); r.code != ExitUsage || !strings.Contains(r.stderr, "--nats-routes") {
		t.Errorf("--nats-routes without --print-nats-config: %s, want exit 2 naming it", r)
	}
}
