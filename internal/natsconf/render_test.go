package natsconf

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"

	"github.com/patchd/patchd/internal/jetq"
)

// TestRender: the configuration file is read by nats-server's own parser
// into the account, the users with their permissions, JetStream's
// directory, TLS and the cluster's routes; it holds no plain password
// but the routes'.
func TestRender(t *testing.T) {
	m, err := Generate(Password, []string{"api", "web"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, ca := selfSigned(t, dir)
	srv := Server{
		Name: "$SERVER_NAME", Listen: "0.0.0.0:4222", HTTP: "127.0.0.1:8222", StoreDir: filepath.Join(dir, `store "quoted" $HOME`),
		TLS:        &TLS{CertFile: cert, KeyFile: key, CAFile: ca, VerifyClients: true},
		Cluster:    &Cluster{Name: "patchd", Listen: "0.0.0.0:6222", Routes: []string{"n2:6222", "n3:6222"}},
		BcryptCost: 4,
	}
	var b bytes.Buffer
	if err := m.Render(&b, srv); err != nil {
		t.Fatal(err)
	}
	conf := b.String()
	for _, u := range m.Users() {
		if strings.Contains(conf, u.Password) {
			t.Errorf("the configuration holds %s's plain password", u.Name)
		}
	}
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVER_NAME", "n1")
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server reads the configuration: %v\n%s", err, conf)
	}
	if o.ServerName != "n1" || o.Port != 4222 || o.HTTPPort != 8222 || o.StoreDir != srv.StoreDir || !o.JetStream || !o.SyncAlways {
		t.Errorf("server: name %q port %d http %d store %q jetstream %v sync always %v", o.ServerName, o.Port, o.HTTPPort, o.StoreDir, o.JetStream, o.SyncAlways)
	}
	relaxed, err := m.Options(Server{StoreDir: dir, SyncInterval: time.Minute})
	if err != nil || relaxed.SyncAlways || relaxed.SyncInterval != time.Minute {
		t.Errorf("SyncInterval 1m: always %v interval %v, %v", relaxed.SyncAlways, relaxed.SyncInterval, err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("client TLS %v, want TLS verifying clients", o.TLSConfig)
	}
	if o.Cluster.Name != "patchd" || o.Cluster.Port != 6222 || o.Cluster.TLSConfig == nil || o.Cluster.Username != RouteUser || len(o.Routes) != 2 {
		t.Errorf("cluster: %q port %d tls %v user %q routes %v", o.Cluster.Name, o.Cluster.Port, o.Cluster.TLSConfig != nil, o.Cluster.Username, o.Routes)
	}
	for _, r := range o.Routes {
		if r.User.Username() != RouteUser {
			t.Errorf("route %s: user %q", r.Host, r.User.Username())
		}
	}
	if len(o.Users) != 3 {
		t.Fatalf("%d users, want 3", len(o.Users))
	}
	for _, u := range o.Users {
		var want Permissions
		switch u.Username {
		case GatewayUser:
			want = GatewayPermissions()
		case "run-api", "run-web":
			want, _ = RunnerPermissions(strings.TrimPrefix(u.Username, "run-"))
		default:
			t.Fatalf("user %q", u.Username)
		}
		if u.Account == nil || u.Account.Name != Account {
			t.Errorf("%s: account %v", u.Username, u.Account)
		}
		if !strings.HasPrefix(u.Password, "$2a$") {
			t.Errorf("%s: password %q is not a bcrypt hash", u.Username, u.Password)
		}
		p := u.Permissions
		if !slices.Equal(p.Publish.Allow, want.Publish) || !slices.Equal(p.Subscribe.Allow, want.Subscribe) || (p.Response != nil) != want.AllowResponses {
			t.Errorf("%s: permissions %+v %+v %+v, want %+v", u.Username, p.Publish, p.Subscribe, p.Response, want)
		}
	}
}

// TestRenderNKeys: with nkeys, the configuration names public keys only.
func TestRenderNKeys(t *testing.T) {
	m, err := Generate(NKey, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := m.Options(Server{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Nkeys) != 2 || len(o.Users) != 0 {
		t.Fatalf("%d nkey users, %d password users; want 2, 0", len(o.Nkeys), len(o.Users))
	}
	for _, u := range o.Nkeys {
		if u.Nkey != m.Gateway.PublicKey && u.Nkey != m.Runner("a").PublicKey {
			t.Errorf("nkey %s is not one of the model's", u.Nkey)
		}
	}
}

// TestRenderRefuses: a setting the server could not use is an error
// naming it.
func TestRenderRefuses(t *testing.T) {
	m, err := Generate(Password, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		srv  Server
		want string
	}{
		{Server{}, "store dir"},
		{Server{StoreDir: "s", Listen: "4222"}, "nats listen"},
		{Server{StoreDir: "s", TLS: &TLS{CertFile: "c"}}, "key file"},
		{Server{StoreDir: "s", TLS: &TLS{CertFile: "c", KeyFile: "k", VerifyClients: true}}, "CA file"},
		{Server{StoreDir: "s", Cluster: &Cluster{}}, "cluster name"},
		{Server{StoreDir: "s", Cluster: &Cluster{Name: "c", Routes: []string{"n2"}}}, `route "n2"`},
	} {
		err := m.Render(&bytes.Buffer{}, tc.srv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Render(%+v) = %v, want an error naming %q", tc.srv, err, tc.want)
		}
	}
	for _, ws := range []string{"", "a.b", "a*", ">", "a b", strings.Repeat("x", 65)} {
		if _, err := Generate(Password, []string{ws}); err == nil {
			t.Errorf("Generate(%q) succeeded", ws)
		}
	}
}

// TestLoadOrGenerate: the credentials are saved 0600 and read back; a new
// workspace gets a runner, the others keep their secrets.
func TestLoadOrGenerate(t *testing.T) {
	for _, mode := range []Mode{Password, NKey} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nats")
			m1, err := LoadOrGenerate(dir, mode, []string{"a"})
			if err != nil {
				t.Fatal(err)
			}
			m2, err := LoadOrGenerate(dir, Password, []string{"b", "a"})
			if err != nil {
				t.Fatal(err)
			}
			if m2.Mode != mode || len(m2.Runners) != 2 || m2.Runners[0].Workspace != "a" || m2.Runners[1].Workspace != "b" {
				t.Fatalf("reloaded: mode %v runners %d", m2.Mode, len(m2.Runners))
			}
			if !bytes.Equal(m1.Gateway.Secret(), m2.Gateway.Secret()) || !bytes.Equal(m1.Runner("a").Secret(), m2.Runner("a").Secret()) || m1.RoutePassword != m2.RoutePassword {
				t.Error("a reload changed a secret")
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", e.Name(), fi.Mode().Perm())
				}
			}
		})
	}
}

// selfSigned writes a CA-less self-signed certificate for localhost and
// returns its certificate, key and (the same certificate as) CA files.
func selfSigned(t *testing.T, dir string) (cert, key, ca string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, cert
}

// TestTLS: a server with natsconf's TLS block takes a runner's tls://
// connection that trusts its CA (jetq.Options.CAFile, a runner's
// --nats-ca) and runs JetStream over it; a client that does not trust
// the CA is refused by its own certificate check.
func TestTLS(t *testing.T) {
	m, err := Generate(Password, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, ca := selfSigned(t, t.TempDir())
	opts, err := m.Options(Server{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), BcryptCost: 4, TLS: &TLS{CertFile: cert, KeyFile: key, CAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.RunServer(opts)
	t.Cleanup(s.Shutdown)
	url := fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	gw := m.Gateway
	nc, js, err := jetq.Connect(ctx, jetq.Options{URL: url, User: gw.Name, Password: gw.Password, CAFile: ca})
	if err != nil {
		t.Fatalf("connect over TLS with the CA: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Error("the connection is not TLS")
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream over TLS: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if nc, _, err := jetq.Connect(short, jetq.Options{URL: url, User: gw.Name, Password: gw.Password}); err == nil {
		nc.Close()
		t.Error("a client without the CA connected")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
}
