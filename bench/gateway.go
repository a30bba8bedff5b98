package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// gatewayRow is one concurrency level of the gateway step: the single
// daemon and `patchd gateway` over one NATS server (streams R1) and over
// a JetStream cluster of three (R3), in the same rounds.
type gatewayRow struct {
	clients int
	daemon  *point
	// gw are the gateway's setups, in gatewaySetups' order.
	gw []*gatewayPoint
}

// gatewayPoint is one gateway setup at one level.
type gatewayPoint struct {
	point
	// natsCPU is the NATS servers' CPU time per acknowledged patch (all
	// of them summed), one per round.
	natsCPU []time.Duration
}

// gatewaySetup is a way to run the gateway's NATS.
type gatewaySetup struct {
	name    string
	servers int
	// sync is JetStream's sync_interval; 0 is natsconf's "always".
	sync time.Duration
}

// gatewaySetups are measured in each round: natsconf's configuration on
// one server and on three, and one server with nats-server's own default
// sync interval (2 minutes), to show what syncing every write costs.
var gatewaySetups = []gatewaySetup{
	{"gateway R1", 1, 0},
	{"gateway R3", 3, 0},
	{"gateway R1, sync 2m", 1, 2 * time.Minute},
}

// benchWorkspace is the workspace the gateway's patches are for.
const benchWorkspace = "bench"

// gatewayIngest measures the gateway's intake beside the daemon's: the
// same load (clients, rounds, bodies) against a fresh daemon, a gateway
// over one nats-server and a gateway over three, taking turns in each
// round. No runner consumes: what is measured is intake, a 202 after
// JetStream's PubAck (sync_interval: always, as natsconf configures it).
func (b *bench) gatewayIngest(ctx context.Context, rep *report) error {
	o := b.opts
	natsBin := filepath.Join(b.tmp, "bin", "nats-server")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nats-server: %v\n%s", err, out)
	}
	body := newPatchBody("src/app.py")
	per := o.duration / time.Duration(o.rounds)
	loadFor := func(url, token string, clients, pid int, point string) load {
		return load{url: url, token: token, clients: clients, warmup: o.warmup, dur: per, rssPID: pid,
			body: func(c, n int) []byte { return body.make(patchID(point, c, n)) }}
	}
	for _, clients := range o.clients {
		b.awaitIdle(ctx, rep, fmt.Sprintf("gateway %d", clients))
		row := gatewayRow{clients: clients, daemon: &point{}}
		for range gatewaySetups {
			row.gw = append(row.gw, &gatewayPoint{})
		}
		for round := range o.rounds {
			tag := fmt.Sprintf("%d-%d", clients, round)
			logf("gateway: %d clients, round %d of %d", clients, round+1, o.rounds)
			ws := b.workspace("gwd" + tag)
			if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
				return err
			}
			d, _, err := b.startBin(ctx, b.patchd, ws)
			if err != nil {
				return err
			}
			row.daemon.rounds = append(row.daemon.rounds, runLoad(ctx, loadFor("http://"+d.addr+"/webhook", d.token, clients, d.pid, "d"+tag)))
			if err := d.stop(ctx); err != nil {
				return err
			}
			b.settle()
			for i, setup := range gatewaySetups {
				g, err := b.startGateway(ctx, natsBin, setup, tag)
				if err != nil {
					return err
				}
				cpu0 := g.natsCPU()
				r := runLoad(ctx, loadFor("http://"+g.addr+"/ws/"+benchWorkspace+"/webhook", g.token, clients, g.cmd.Process.Pid, fmt.Sprintf("g%d-%s", i, tag)))
				var perReq time.Duration
				if r.ok > 0 {
					perReq = (g.natsCPU() - cpu0) / time.Duration(r.ok)
				}
				stored, err := g.stored(ctx)
				g.stop()
				if err != nil {
					return err
				}
				if stored < uint64(r.ok) {
					return fmt.Errorf("%s acknowledged %d patches but the work stream holds %d", setup.name, r.ok, stored)
				}
				row.gw[i].rounds = append(row.gw[i].rounds, r)
				row.gw[i].natsCPU = append(row.gw[i].natsCPU, perReq)
				b.settle()
			}
		}
		rep.gateway = append(rep.gateway, row)
	}
	return nil
}

// gatewayRun is a gateway over its own NATS servers.
type gatewayRun struct {
	addr, token string
	cmd         *exec.Cmd
	nats        []*exec.Cmd
	creds       jetq.Options
}

// startGateway starts the setup's nats-servers (a cluster when more than
// one) configured by natsconf, and a gateway over them with streams of as
// many replicas; it returns once the gateway answers /health.
func (b *bench) startGateway(ctx context.Context, natsBin string, setup gatewaySetup, tag string) (*gatewayRun, error) {
	n := setup.servers
	dir := filepath.Join(b.tmp, fmt.Sprintf("gateway-r%d-s%d-%s", n, setup.sync/time.Second, tag))
	state := filepath.Join(dir, "state")
	m, err := natsconf.LoadOrGenerate(natsconf.CredentialsDir(state), natsconf.Password, []string{benchWorkspace})
	if err != nil {
		return nil, err
	}
	clientPorts, routes := make([]int, n), make([]string, n)
	for i := range n {
		if clientPorts[i], err = freePort(); err != nil {
			return nil, err
		}
		rp, err := freePort()
		if err != nil {
			return nil, err
		}
		routes[i] = natsconf.HostPort("127.0.0.1", rp)
	}
	g := &gatewayRun{}
	urls := make([]string, n)
	for i := range n {
		srv := natsconf.Server{Name: fmt.Sprintf("n%d", i+1), Listen: natsconf.HostPort("127.0.0.1", clientPorts[i]),
			StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), SyncInterval: setup.sync}
		if n > 1 {
			srv.Cluster = &natsconf.Cluster{Name: natsconf.ClusterName, Listen: routes[i], Routes: routes}
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1)))
		if err != nil {
			return nil, err
		}
		err = m.Render(f, srv)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		c := exec.Command(natsBin, "--config", f.Name())
		c.Env = cleanEnv()
		lf, err := os.Create(filepath.Join(dir, fmt.Sprintf("n%d.log", i+1)))
		if err != nil {
			return nil, err
		}
		c.Stdout, c.Stderr = lf, lf
		err = c.Start()
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("start nats-server: %w", err)
		}
		b.procs.addCmd(c)
		g.nats = append(g.nats, c)
		urls[i] = "nats://" + natsconf.HostPort("127.0.0.1", clientPorts[i])
	}
	g.creds = jetq.Options{URL: strings.Join(urls, ","), User: m.Gateway.Name, Password: m.Gateway.Password, Name: "bench"}
	if err := g.waitJetStream(ctx); err != nil {
		g.stop()
		return nil, fmt.Errorf("nats R%d: %w (logs in %s)", n, err, dir)
	}
	port, err := freePort()
	if err != nil {
		g.stop()
		return nil, err
	}
	g.cmd = exec.Command(b.patchd, "gateway", "--state-dir", state, "--nats", strings.Join(urls, ","),
		"--nats-user", m.Gateway.Name, "--nats-password-file", filepath.Join(natsconf.CredentialsDir(state), m.Gateway.File()),
		"--replicas", strconv.Itoa(n), "--workspaces", benchWorkspace, "--port", strconv.Itoa(port), "--fallback-port", "none")
	g.cmd.Env = cleanEnv()
	out, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		g.stop()
		return nil, err
	}
	g.cmd.Stdout, g.cmd.Stderr = out, out
	err = g.cmd.Start()
	out.Close()
	if err != nil {
		g.stop()
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	b.procs.addCmd(g.cmd)
	g.addr = natsconf.HostPort("127.0.0.1", port)
	if err := waitHealthy(ctx, g.addr, 60*time.Second); err != nil {
		g.stop()
		tail, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("gateway R%d: %w: %s", n, err, lastLine(string(tail)))
	}
	tok, err := os.ReadFile(filepath.Join(state, "token"))
	if err != nil {
		g.stop()
		return nil, err
	}
	g.token = strings.TrimSpace(string(tok))
	return g, nil
}

// waitJetStream polls until JetStream answers (a cluster has elected its
// meta leader).
func (g *gatewayRun) waitJetStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		nc, js, err := jetq.Connect(cctx, g.creds)
		if err == nil {
			_, err = js.AccountInfo(cctx)
			nc.Close()
		}
		ccancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("JetStream did not answer within a minute: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stored is how many messages the work stream holds.
func (g *gatewayRun) stored(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nc, js, err := jetq.Connect(ctx, g.creds)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	st, err := js.Stream(ctx, jetq.StreamWork)
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.Msgs, nil
}

// natsCPU is the NATS servers' CPU time so far, summed.
func (g *gatewayRun) natsCPU() (sum time.Duration) {
	for _, c := range g.nats {
		sum += cpuTime(c.Process.Pid)
	}
	return sum
}

// stop stops the gateway (SIGTERM, then SIGKILL) and the servers.
func (g *gatewayRun) stop() {
	procs := g.nats
	if g.cmd != nil {
		procs = append([]*exec.Cmd{g.cmd}, procs...)
	}
	for _, c := range procs {
		if c.Process == nil || c.ProcessState != nil {
			continue
		}
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// medianDur is the median of ds (0 for none).
func medianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return median(s)
}

// gatewaySection writes the gateway step's table.
func (r *report) gatewaySection(sb *strings.Builder) {
	if len(r.gateway) == 0 {
		return
	}
	sb.WriteString("\n## Gateway ingest (NATS JetStream)\n\n")
	fmt.Fprintf(sb, "The same load as the ingest step (POST /webhook, ~450-byte blocks with\nunique ids, %s clients, %d rounds of %s, medians of the rounds), in the\nsame rounds against four setups taking turns:\n\n",
		joinInts(r.opts.clients), r.opts.rounds, r.opts.duration/time.Duration(r.opts.rounds))
	sb.WriteString("- **daemon**: a fresh single patchd (`patchd start`), as in the ingest step.\n")
	sb.WriteString("- **gateway R1**: `patchd gateway --nats …` (POST /ws/bench/webhook) over one\n  `nats-server` process configured by natsconf (users and permissions,\n  `sync_interval: always`); streams with one replica. A 202 comes after\n  JetStream's PubAck: the message is written and synced.\n")
	sb.WriteString("- **gateway R3**: the same over a JetStream cluster of three `nats-server`\n  processes on this machine, streams with three replicas (`--replicas 3`):\n  a PubAck means two of the three have it, each synced.\n")
	sb.WriteString("- **gateway R1, sync 2m**: R1 with nats-server's own default\n  `sync_interval` (2 minutes) instead of natsconf's `always`: a 202 then\n  survives the crash of a process, not the loss of the machine's power.\n\n")
	sb.WriteString("No runner consumes the queue: this is intake. CPU/request is the\nmeasured process's (the daemon, with its worker applying the patches;\nor the gateway); NATS CPU/request sums the nats-server processes'.\nEvery server, the NATS servers and the load generator share the machine's\ncores.\n\n")
	sb.WriteString("| clients | server | req/s | p50 | p99 | CPU/request | NATS CPU/request | failed |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.gateway {
		fmt.Fprintf(sb, "| %d | daemon | %.0f | %s | %s | %s | — | %d |\n", row.clients, row.daemon.rate(), ms(row.daemon.p(0.5)), ms(row.daemon.p(0.99)), us(row.daemon.cpuPerReq()), row.daemon.failed())
		for i, g := range row.gw {
			fmt.Fprintf(sb, "| %d | %s | %.0f | %s | %s | %s | %s | %d |\n", row.clients, gatewaySetups[i].name, g.rate(), ms(g.p(0.5)), ms(g.p(0.99)), us(g.cpuPerReq()), us(medianDur(g.natsCPU)), g.failed())
		}
	}
}
