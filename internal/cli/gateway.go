package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/gatewayd"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// gatewayCommon are the common settings the gateway uses.
var gatewayCommon = []string{"state-dir", "config", "host", "port", "fallback-port", "log-level", "drain-timeout",
	"no-auth", "max-body", "rate-limit", "rate-burst", "allowed-host", "allowed-origin", "public-url", "trust-proxy",
	"health-detail", "metrics-public", "max-conns", "max-conns-per-client", config.SettingMaxEdits,
	"nats-user", "nats-password-file", "nats-creds", "nats-ca", config.SettingMaxDeliver, "ack-wait"}

// gatewayFlags are the gateway's own flags.
type gatewayFlags struct {
	nats, listen, store, workspaces, auth string
	embedded, print                       bool
	// routes are --nats-routes: with --print-nats-config, the cluster's.
	routes   []string
	replicas int
	dedup    time.Duration
}

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.nats, "nats", "", "the NATS server(s) with JetStream, nats://host:4222 (several of one cluster separated by commas)")
	fs.BoolVar(&g.embedded, "embedded-nats", false, "run a NATS server with JetStream in this process instead of --nats (its files under the state dir)")
	fs.StringVar(&g.listen, "nats-listen", gatewayd.DefaultNATSListen, "with --embedded-nats: where runners connect, HOST:PORT")
	fs.StringVar(&g.store, "nats-store", "", "with --embedded-nats: JetStream's directory (default <state dir>/nats)")
	fs.StringVar(&g.auth, "nats-auth", "password", "with --embedded-nats: how NATS users prove who they are: password or nkey (secrets generated under <state dir>/nats-credentials, 0600)")
	fs.StringVar(&g.workspaces, "workspaces", "", "workspaces that exist before a runner registers (a,b); with --embedded-nats each gets a runner user")
	fs.IntVar(&g.replicas, "replicas", jetq.DefaultReplicas, "replicas of each stream and bucket: 1 on one server, 3 in a cluster of three")
	fs.DurationVar(&g.dedup, "dedup-window", jetq.DefaultDedupWindow, "how long a resent patch (same id and body) is recognised as a duplicate by the queue")
	fs.BoolVar(&g.print, "print-nats-config", false, "print a nats-server configuration with the gateway's and the runners' users (generated under the state dir if none are) and exit")
	fs.Func("nats-routes", "with --print-nats-config: the route addresses (HOST:PORT, comma-separated) of the servers of a JetStream cluster; the configuration printed then serves each of them (its name from $SERVER_NAME, routes listened for on that port)", func(s string) error {
		g.routes = g.routes[:0]
		for _, r := range strings.Split(s, ",") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
				return fmt.Errorf("%q is not HOST:PORT", r)
			}
			g.routes = append(g.routes, r)
		}
		return nil
	})
}

// runGateway is `patchd gateway`: the HTTP API, MCP and the dashboard
// over NATS JetStream, in the foreground, for runners behind it (patchd
// run --queue).
func runGateway(ctx context.Context, env *Env, args []string) error {
	var g gatewayFlags
	cfg, rest, err := parse(env, "gateway", args, g.register)
	if err != nil {
		return err
	}
	if err := noArgs("gateway", rest); err != nil {
		return err
	}
	o, err := g.options(cfg)
	if err != nil {
		return exit(ExitUsage, "gateway: %v", err)
	}
	if g.print {
		m, err := natsconf.LoadOrGenerate(natsconf.CredentialsDir(cfg.StateDir), o.Embedded.Auth, o.Workspaces)
		if err != nil {
			return exit(ExitFailed, "gateway: %v", err)
		}
		srv := natsconf.Server{Listen: g.listen, StoreDir: o.Embedded.StoreDir}
		if len(g.routes) > 0 {
			srv = natsconf.ClusterNode(g.listen, o.Embedded.StoreDir, g.routes)
		}
		if err := m.Render(env.Stdout, srv); err != nil {
			return exit(ExitFailed, "gateway: %v", err)
		}
		fmt.Fprintf(env.Stderr, "the users' secrets are in %s (0600): give each runner its own\n", natsconf.CredentialsDir(cfg.StateDir))
		return nil
	}
	err = gatewayd.Run(ctx, o, env.Stderr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gatewayd.ErrAlreadyRunning):
		return exit(ExitAlreadyRunning, "gateway: %v (%s)", err, cfg.StateDir)
	}
	return daemonExit(err)
}

// options checks the flags and builds the gateway's options.
func (g *gatewayFlags) options(cfg *config.Config) (gatewayd.Options, error) {
	o := gatewayd.Options{Config: cfg, Replicas: g.replicas, DedupWindow: g.dedup,
		MaxDeliver: cfg.Queue.MaxDeliver, AckWait: cfg.Queue.AckWait}
	for _, ws := range strings.Split(g.workspaces, ",") {
		if ws = strings.TrimSpace(ws); ws == "" {
			continue
		}
		if err := jetq.CheckWorkspace(ws); err != nil {
			return o, fmt.Errorf("--workspaces: %w", err)
		}
		o.Workspaces = append(o.Workspaces, ws)
	}
	if g.replicas < 1 || g.replicas > 5 {
		return o, fmt.Errorf("--replicas: must be from 1 to 5, not %d", g.replicas)
	}
	if g.dedup < time.Second {
		return o, fmt.Errorf("--dedup-window: must be at least 1s, not %s", g.dedup)
	}
	mode, err := natsconf.ParseMode(g.auth)
	if err != nil {
		return o, fmt.Errorf("--nats-auth: %w", err)
	}
	o.Embedded = gatewayd.Embedded{On: g.embedded, Listen: g.listen, StoreDir: g.store, Auth: mode}
	if g.print {
		if o.Embedded.StoreDir == "" {
			o.Embedded.StoreDir = cfg.StateDir + "/nats"
		}
		return o, nil
	}
	switch {
	case len(g.routes) > 0:
		return o, errors.New("--nats-routes: only with --print-nats-config")
	case g.embedded && g.nats != "":
		return o, errors.New("--nats and --embedded-nats: give one")
	case !g.embedded && g.nats == "":
		return o, errors.New("--nats URL or --embedded-nats: the gateway needs NATS JetStream")
	case g.embedded && g.replicas != 1:
		return o, errors.New("--replicas: the embedded server is one server: 1")
	}
	if g.nats != "" {
		urls, err := parseNATSURLs(g.nats)
		if err != nil {
			return o, fmt.Errorf("--nats: %w", err)
		}
		if o.NATS, err = natsCredentials(cfg.Queue); err != nil {
			return o, err
		}
		o.NATS.URL = strings.Join(urls, ",")
	}
	return o, nil
}

// natsCredentials are the gateway's credentials for an external NATS, from
// the settings a runner uses too: --nats-user with --nats-password-file,
// or --nats-creds (a credentials file, or an nkey seed); --nats-ca.
func natsCredentials(q config.Queue) (jetq.Options, error) {
	o := jetq.Options{User: q.User, CAFile: q.CA}
	if q.Creds != "" && (q.User != "" || q.PasswordFile != "") {
		return o, errors.New("--nats-creds and --nats-user/--nats-password-file are two ways to authenticate: give one")
	}
	if (q.User == "") != (q.PasswordFile == "") {
		return o, errors.New("--nats-user and --nats-password-file go together: give both or neither")
	}
	if q.Creds != "" {
		b, err := os.ReadFile(q.Creds)
		if err != nil {
			return o, fmt.Errorf("--nats-creds: %w", err)
		}
		if strings.Contains(string(b), "BEGIN NATS USER JWT") {
			o.CredsFile = q.Creds
		} else {
			o.NKeyFile = q.Creds
		}
	}
	if q.PasswordFile != "" {
		b, err := os.ReadFile(q.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("--nats-password-file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		if o.Password = strings.TrimRight(pw, "\r"); o.Password == "" {
			return o, fmt.Errorf("--nats-password-file %s: the first line is empty", q.PasswordFile)
		}
	}
	return o, nil
}

// parseNATSURLs reads --nats: NATS URLs separated by commas, without a
// user or password (a process list would show them).
func parseNATSURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		scheme, rest, ok := strings.Cut(part, "://")
		switch {
		case !ok || rest == "":
			return nil, fmt.Errorf("must be a NATS URL like nats://host:4222, not %q", part)
		case scheme != "nats" && scheme != "tls":
			return nil, fmt.Errorf("must be a nats:// or tls:// URL, not %q", scheme+"://")
		case strings.Contains(rest, "@"):
			return nil, errors.New("must not hold a user or password")
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return nil, errors.New("no URL")
	}
	return out, nil
}
