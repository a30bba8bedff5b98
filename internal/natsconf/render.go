package natsconf

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// Server is one nats-server's own settings: where it listens, where
// JetStream keeps its files, TLS and, in a cluster, its routes.
type Server struct {
	// Name is the server's name, unique in a cluster (server_name); a
	// name like $SERVER_NAME is written unquoted, a variable the server
	// reads from its environment.
	Name string
	// Listen is the client address, HOST:PORT ("0.0.0.0:4222" if empty).
	Listen string
	// HTTP, when set, is the monitoring address (/healthz, /jsz).
	HTTP string
	// StoreDir is JetStream's directory (store_dir).
	StoreDir string
	// SyncInterval is how often JetStream fsyncs its files; 0 is after
	// every write ("always"), as the daemon syncs its journal before it
	// answers 202: an acknowledged patch then survives a power loss of
	// the server's machine. nats-server's own default is 2 minutes.
	SyncInterval time.Duration
	// TLS, when set, makes clients (and routes) speak TLS.
	TLS *TLS
	// Cluster, when set, joins the server to a JetStream cluster.
	Cluster *Cluster
	// BcryptCost is the cost of the password hashes (bcrypt's default
	// when 0); tests lower it.
	BcryptCost int
}

// TLS names the PEM files of a server's certificate and of the CA that
// signed the clients' (and the other servers') certificates.
type TLS struct {
	CertFile string
	KeyFile  string
	CAFile   string
	// VerifyClients requires clients to present a certificate the CA
	// signed, on top of their user's secret.
	VerifyClients bool
}

// Cluster is a server's place in a cluster of (usually three) servers.
type Cluster struct {
	// Name is the cluster's name, the same on every server.
	Name string
	// Listen is the route address, HOST:PORT ("0.0.0.0:6222" if empty).
	Listen string
	// Routes are the other servers' route addresses, HOST:PORT.
	Routes []string
}

// envName is a server name that is an environment variable.
var envName = regexp.MustCompile(`^\$[A-Z_][A-Z0-9_]*$`)

// Render writes a nats-server configuration for srv with the model's
// account and users: password hashes or public nkeys only, except in a
// cluster, where the routes' URLs carry the route password (keep such a
// file 0600).
func (m *Model) Render(w io.Writer, srv Server) error {
	var b bytes.Buffer
	b.WriteString("# nats-server configuration for patchd (patchd gateway --print-nats-config).\n")
	b.WriteString("# Users: " + GatewayUser + " (the gateway) and " + RunnerUserPrefix + "<workspace> (one runner each); see \"Scale out\" in patchd's README.\n")
	if envName.MatchString(srv.Name) {
		// A variable: one file serves every server of a cluster, each
		// started with its own SERVER_NAME in its environment.
		fmt.Fprintf(&b, "server_name: %s\n", srv.Name)
	} else if srv.Name != "" {
		fmt.Fprintf(&b, "server_name: %s\n", quote(srv.Name))
	}
	listen := srv.Listen
	if listen == "" {
		listen = "0.0.0.0:4222"
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return fmt.Errorf("nats listen %q: %w", listen, err)
	}
	fmt.Fprintf(&b, "listen: %s\n", quote(listen))
	if srv.HTTP != "" {
		fmt.Fprintf(&b, "http: %s\n", quote(srv.HTTP))
	}
	if srv.StoreDir == "" {
		return fmt.Errorf("nats store dir: missing (JetStream needs a directory)")
	}
	b.WriteString("jetstream {\n")
	fmt.Fprintf(&b, "  store_dir: %s\n", quote(srv.StoreDir))
	if srv.SyncInterval > 0 {
		fmt.Fprintf(&b, "  sync_interval: %s\n", quote(srv.SyncInterval.String()))
	} else {
		b.WriteString("  sync_interval: always\n")
	}
	b.WriteString("}\n")
	if srv.TLS != nil {
		if err := renderTLS(&b, "", srv.TLS, srv.TLS.VerifyClients); err != nil {
			return err
		}
	}
	if c := srv.Cluster; c != nil {
		if err := m.renderCluster(&b, c, srv.TLS); err != nil {
			return err
		}
	}
	if err := m.renderAccounts(&b, srv.BcryptCost); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// renderTLS writes a tls block, indented by in.
func renderTLS(b *bytes.Buffer, in string, t *TLS, verify bool) error {
	if t.CertFile == "" || t.KeyFile == "" {
		return fmt.Errorf("nats tls: a server needs both its certificate and its key file")
	}
	fmt.Fprintf(b, "%stls {\n", in)
	fmt.Fprintf(b, "%s  cert_file: %s\n", in, quote(t.CertFile))
	fmt.Fprintf(b, "%s  key_file: %s\n", in, quote(t.KeyFile))
	if t.CAFile != "" {
		fmt.Fprintf(b, "%s  ca_file: %s\n", in, quote(t.CAFile))
	}
	if verify {
		if t.CAFile == "" {
			return fmt.Errorf("nats tls: verifying certificates needs the CA file")
		}
		fmt.Fprintf(b, "%s  verify: true\n", in)
	}
	fmt.Fprintf(b, "%s  timeout: 2\n", in)
	fmt.Fprintf(b, "%s}\n", in)
	return nil
}

// renderCluster writes the cluster block: routes authenticated by the
// route user, and TLS (servers verify each other) when the server has it.
func (m *Model) renderCluster(b *bytes.Buffer, c *Cluster, t *TLS) error {
	if c.Name == "" {
		return fmt.Errorf("nats cluster name: missing")
	}
	listen := c.Listen
	if listen == "" {
		listen = "0.0.0.0:6222"
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return fmt.Errorf("nats cluster listen %q: %w", listen, err)
	}
	b.WriteString("cluster {\n")
	fmt.Fprintf(b, "  name: %s\n", quote(c.Name))
	fmt.Fprintf(b, "  listen: %s\n", quote(listen))
	b.WriteString("  authorization {\n")
	fmt.Fprintf(b, "    user: %s\n", quote(RouteUser))
	fmt.Fprintf(b, "    password: %s\n", quote(m.RoutePassword))
	b.WriteString("  }\n")
	if t != nil {
		if err := renderTLS(b, "  ", t, t.CAFile != ""); err != nil {
			return err
		}
	}
	b.WriteString("  routes: [\n")
	for _, r := range c.Routes {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return fmt.Errorf("nats route %q: %w", r, err)
		}
		fmt.Fprintf(b, "    %s\n", quote("nats-route://"+RouteUser+":"+m.RoutePassword+"@"+r))
	}
	b.WriteString("  ]\n")
	b.WriteString("}\n")
	return nil
}

// renderAccounts writes the PATCHD account (JetStream on) with its users.
func (m *Model) renderAccounts(b *bytes.Buffer, cost int) error {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	b.WriteString("accounts {\n")
	fmt.Fprintf(b, "  %s {\n", Account)
	b.WriteString("    jetstream: enabled\n")
	b.WriteString("    users: [\n")
	for _, u := range m.Users() {
		fmt.Fprintf(b, "      # %s\n", u.describe())
		b.WriteString("      {\n")
		if u.Seed != nil {
			fmt.Fprintf(b, "        nkey: %s\n", quote(u.PublicKey))
		} else {
			h, err := hash(u.Password, cost)
			if err != nil {
				return err
			}
			fmt.Fprintf(b, "        user: %s\n", quote(u.Name))
			fmt.Fprintf(b, "        password: %s\n", quote(h))
		}
		b.WriteString("        permissions: {\n")
		fmt.Fprintf(b, "          publish: { allow: %s }\n", list(u.Permissions.Publish, "          "))
		fmt.Fprintf(b, "          subscribe: { allow: %s }\n", list(u.Permissions.Subscribe, "          "))
		if u.Permissions.AllowResponses {
			b.WriteString("          allow_responses: true\n")
		}
		b.WriteString("        }\n")
		b.WriteString("      }\n")
	}
	b.WriteString("    ]\n")
	b.WriteString("  }\n")
	b.WriteString("}\n")
	return nil
}

// describe is the comment above a user in the configuration.
func (u *User) describe() string {
	who := "the gateway"
	if u.Workspace != "" {
		who = "the runner of workspace " + u.Workspace
	}
	if u.Seed != nil {
		return who + " (user " + u.Name + ", nkey " + u.File() + ")"
	}
	return who
}

// quote writes s as a double-quoted configuration string ("$" inside is
// not a variable there, so a bcrypt hash stays literal), with the escapes
// the configuration's lexer knows: \\, \", \t, \n, \r and \xXX.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// list writes subjects as a configuration array, one a line below
// indent.
func list(subjects []string, indent string) string {
	var b strings.Builder
	b.WriteString("[\n")
	for _, s := range subjects {
		b.WriteString(indent + "  " + quote(s) + "\n")
	}
	b.WriteString(indent + "]")
	return b.String()
}

// Options returns the server options of srv for an embedded server: the
// configuration Render writes, read by the server's own parser, so the
// embedded server and one started from the file are the same.
func (m *Model) Options(srv Server) (*server.Options, error) {
	var b bytes.Buffer
	if err := m.Render(&b, srv); err != nil {
		return nil, err
	}
	o := &server.Options{}
	if err := o.ProcessConfigString(b.String()); err != nil {
		return nil, fmt.Errorf("nats server options: %w", err)
	}
	return o, nil
}

// HostPort joins a host and a port for Server.Listen.
func HostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ClusterName is the name of the cluster ClusterNode configures.
const ClusterName = "patchd"

// ClusterNode is the configuration every server of a cluster can share:
// clients on listen, JetStream in storeDir, routes listened for on all
// interfaces at the port of the first of routes (HOST:PORT each, the
// server's own included: a server ignores its route to itself), its
// name from $SERVER_NAME.
func ClusterNode(listen, storeDir string, routes []string) Server {
	port := "6222"
	if len(routes) > 0 {
		if _, p, err := net.SplitHostPort(routes[0]); err == nil {
			port = p
		}
	}
	return Server{Name: "$SERVER_NAME", Listen: listen, StoreDir: storeDir,
		Cluster: &Cluster{Name: ClusterName, Listen: net.JoinHostPort("0.0.0.0", port), Routes: routes}}
}
