// Package natsrun is the runner's door: it feeds the local daemon's
// api.Service from NATS JetStream, as a `patchd gateway` publishes a
// workspace's patches there (see NATS-SPEC and the README's "Scale out").
//
// Like every door it only calls the service: it takes a patch block from
// the workspace's work queue (durable pull consumer run-<ws>, one message
// at a time), hands it to Submit, follows it with Wait while telling
// JetStream it is still at work, and acknowledges the message once the
// patch has an outcome. The local journal makes the effect exactly once: a
// message delivered again after a crash or a lost ack is a Duplicate to
// Submit, whose outcome is waited for and acknowledged, never applied
// twice. A refused or failing Submit is acknowledged negatively with a
// backoff; refused on its --max-deliver-th delivery the message is made a
// dead letter (dead.go; one whose runner died on each delivery is the
// gateway's, from the server's advisory). The door also forwards the service's
// events to patchd.events.<ws> and keeps the patch views and the
// workspace's status in the KV buckets current (events.go, status.go), and
// answers the gateway's control requests by calling the service (ctl.go).
//
// NATS being down never stops the daemon: the runner connects, and
// reconnects, in the background, and says how it stands in Status.
package natsrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/jetq"
)

// Options configure a Runner.
type Options struct {
	// Service is the local daemon's service, which the runner calls.
	Service api.Service
	// Queue is where NATS is and how to reach it (--queue and the
	// --nats-* settings).
	Queue config.Queue
	// StateDir holds the runner's file (natsrun.json: which local event
	// was published last).
	StateDir string
	// Instance identifies this daemon in the workspace's record.
	Instance string
	// Logger receives the runner's log; nil discards it.
	Logger *slog.Logger
	// StatusEvery is how often the workspace's record is put besides
	// after events; 0 means 10 s.
	StatusEvery time.Duration
	// MaxBodyBytes bounds a patch block taken from the queue, or a
	// previewed one, as --max-body bounds the webhook's; 0: no bound.
	MaxBodyBytes int64
}

// Runner is a running door from NATS JetStream to the service.
type Runner struct {
	opts   Options
	svc    api.Service
	ws     string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	// ctl counts the control requests being answered.
	ctl       sync.WaitGroup
	nc        atomic.Pointer[nats.Conn]
	lastErr   atomic.Pointer[string]
	cursor    *cursor
	statusReq chan struct{}

	// pinned: NATS gives the workspace's patches to this runner; standby:
	// to another runner (pin.go). lastCheck is the pull loop's own.
	pinned    atomic.Bool
	standby   atomic.Bool
	lastCheck time.Time
	// roles is signalled when standby changes (ctlLoop follows it).
	roles chan struct{}
	// fromNATS are the patches received from the work queue whose
	// local submission event is not forwarded: the gateway published
	// it when it queued them (events.go).
	fromNATS fromNATS
}

// Start starts the runner in the background and returns at once: the
// connection to NATS is made (and made again) by the runner's own
// goroutines. It fails only on a setting it cannot use (an unreadable
// password file, the state file).
func Start(opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StatusEvery <= 0 {
		opts.StatusEvery = 10 * time.Second
	}
	if opts.Queue.AckWait <= 0 {
		opts.Queue.AckWait = jetq.DefaultAckWait
	}
	if err := jetq.CheckWorkspace(opts.Queue.Workspace); err != nil {
		return nil, fmt.Errorf("--%s: %w", config.SettingWorkspaceName, err)
	}
	copts, err := connectOptions(opts)
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: opts, svc: opts.Service, ws: opts.Queue.Workspace, done: make(chan struct{}),
		log: opts.Logger.With("nats_workspace", opts.Queue.Workspace), statusReq: make(chan struct{}, 1),
		roles: make(chan struct{}, 1)}
	// Taken before anything is consumed: what happens from now on is
	// published even on the first start.
	if r.cursor, err = openCursor(opts.StateDir, r.ws, r.svc); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.setErr("connecting")
	go r.main(ctx, copts)
	return r, nil
}

// Stop stops the runner: a patch it is waiting for is handed back to the
// queue (so that a successor takes it at once, where its journal knows it
// already), and the connection is drained. It waits until ctx ends at most.
func (r *Runner) Stop(ctx context.Context) {
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.log.Warn("nats: the runner did not stop in time")
	}
}

// Status says how the runner stands, for /health and `patchd status`.
func (r *Runner) Status() *api.NATSStatus {
	st := &api.NATSStatus{URL: strings.Join(r.opts.Queue.URLs, ","), Workspace: r.ws}
	if nc := r.nc.Load(); nc != nil && nc.IsConnected() {
		st.Connected = true
	}
	st.Pinned, st.Standby = st.Connected && r.pinned.Load(), st.Connected && r.standby.Load()
	if e := r.lastErr.Load(); e != nil {
		st.Error = *e
	}
	return st
}

func (r *Runner) setErr(s string) { r.lastErr.Store(&s) }

// connectOptions reads the credentials the settings name.
func connectOptions(opts Options) (jetq.Options, error) {
	q := opts.Queue
	// The only inbox a runner's NATS permissions let it read (natsconf).
	co := jetq.Options{URL: strings.Join(q.URLs, ","), User: q.User, CAFile: q.CA,
		Name: "patchd runner " + q.Workspace, InboxPrefix: jetq.RunnerInbox(q.Workspace)}
	if q.Creds != "" {
		// A credentials file (JWT and seed), or only an nkey seed, as
		// `patchd gateway` generates for each runner.
		b, err := os.ReadFile(q.Creds)
		if err != nil {
			return co, fmt.Errorf("--nats-creds: %w", err)
		}
		if strings.Contains(string(b), "BEGIN NATS USER JWT") {
			co.CredsFile = q.Creds
		} else {
			co.NKeyFile = q.Creds
		}
	}
	if q.PasswordFile != "" {
		b, err := os.ReadFile(q.PasswordFile)
		if err != nil {
			return co, fmt.Errorf("--nats-password-file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		if pw = strings.TrimRight(pw, "\r"); pw == "" {
			return co, fmt.Errorf("--nats-password-file %s: the first line is empty", q.PasswordFile)
		}
		co.Password = pw
	}
	return co, nil
}

// main connects, sets up the streams and consumers, runs the loops, and
// on stop drains the connection.
func (r *Runner) main(ctx context.Context, co jetq.Options) {
	defer close(r.done)
	var nc *nats.Conn
	var js jetstream.JetStream
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, j, err := jetq.Connect(cctx, co)
		cancel()
		if err == nil {
			nc, js = c, j
			break
		}
		if ctx.Err() != nil {
			return
		}
		r.setErr(err.Error())
		r.log.Warn("nats: cannot connect; trying again", "err", err, "retry_in", delay.String())
		if !jetq.Sleep(ctx, delay) {
			return
		}
	}
	r.nc.Store(nc)
	r.setErr("setting up the streams and consumers")
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err == nil {
			return // our own drain at stop
		}
		r.setErr("disconnected: " + err.Error())
		r.log.Warn("nats: connection lost; reconnecting", "err", err)
	})
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
		// A permission violation among them: the runner's NATS user
		// lacks a grant it needs.
		r.log.Warn("nats: asynchronous error", "err", err)
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		r.setErr("")
		r.log.Info("nats: reconnected", "server", c.ConnectedUrlRedacted())
	})
	r.log.Info("nats: connected", "server", nc.ConnectedUrlRedacted())
	defer func() {
		// Acks and replies in flight go out before the connection closes.
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		for deadline := time.Now().Add(2 * time.Second); !nc.IsClosed(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				nc.Close()
			}
		}
	}()

	var parts *setup
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		p, err := r.setup(ctx, js)
		if err == nil {
			parts = p
			r.setErr("")
			break
		}
		if ctx.Err() != nil {
			return
		}
		r.setErr(err.Error())
		r.log.Warn("nats: set up the streams and consumers; trying again", "err", err, "retry_in", delay.String())
		if !jetq.Sleep(ctx, delay) {
			return
		}
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context, *setup){r.work, r.forward, r.statusLoop} {
		wg.Go(func() { loop(ctx, parts) })
	}
	wg.Go(func() { r.ctlLoop(ctx, nc) })
	wg.Wait()
	// The service is not called once Stop returns.
	r.ctl.Wait()
}

// setup is what the loops use: the streams, consumers and buckets.
type setup struct {
	js      jetstream.JetStream
	work    jetstream.Stream
	cons    jetstream.Consumer
	patches jetstream.KeyValue
	spaces  jetstream.KeyValue
}

// setup creates what is missing and finds the rest. A stream or bucket
// that exists is left as it is (the gateway sizes them: replicas, dedup
// window); the workspace's consumer is the runner's and is updated to its
// settings.
func (r *Runner) setup(ctx context.Context, js jetstream.JetStream) (*setup, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s := &setup{js: js}
	for _, cfg := range jetq.Streams(jetq.EnsureOptions{}) {
		st, err := js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = js.CreateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				st, err = js.Stream(ctx, cfg.Name)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("nats: stream %s: %w", cfg.Name, err)
		}
		if cfg.Name == jetq.StreamWork {
			s.work = st
		}
	}
	for _, cfg := range jetq.Buckets(jetq.EnsureOptions{}) {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = js.KeyValue(ctx, cfg.Bucket)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("nats: bucket %s: %w", cfg.Bucket, err)
		}
		if cfg.Bucket == jetq.BucketPatches {
			s.patches = kv
		} else {
			s.spaces = kv
		}
	}
	var err error
	s.cons, err = jetq.EnsureConsumer(ctx, js, r.ws, jetq.ConsumerOptions{MaxDeliver: r.opts.Queue.MaxDeliver, AckWait: r.opts.Queue.AckWait})
	if err != nil {
		return nil, err
	}
	return s, nil
}
