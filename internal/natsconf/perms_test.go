package natsconf

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/jetq"
)

// startServer runs an in-process nats-server with the model's users, on
// a random port, JetStream in a temporary directory.
func startServer(t *testing.T, m *Model) *server.Server {
	t.Helper()
	opts, err := m.Options(Server{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	s := natstest.RunServer(opts)
	t.Cleanup(s.Shutdown)
	return s
}

// violations collects a connection's asynchronous errors.
type violations struct {
	mu   sync.Mutex
	errs []string
	ch   chan struct{}
}

func newViolations() *violations { return &violations{ch: make(chan struct{}, 1)} }

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
	select {
	case v.ch <- struct{}{}:
	default:
	}
}

// waitFor waits until a permission violation for subject arrives: a
// publish to it, or with a "sub " prefix a subscription.
func (v *violations) waitFor(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		v.mu.Lock()
		for _, e := range v.errs {
			want := `Permissions Violation for Publish to "` + subject + `"`
			if sub, ok := strings.CutPrefix(subject, "sub "); ok {
				want = `Permissions Violation for Subscription to "` + sub + `"`
			}
			if strings.Contains(e, want) {
				v.mu.Unlock()
				return
			}
		}
		errs := strings.Join(v.errs, "\n")
		v.mu.Unlock()
		select {
		case <-v.ch:
		case <-deadline:
			t.Fatalf("no permission violation for %q; errors seen:\n%s", subject, errs)
		}
	}
}

// none fails if any error was seen.
func (v *violations) none(t *testing.T) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.errs) > 0 {
		t.Fatalf("unexpected errors: %v", v.errs)
	}
}

// connect connects as u (a runner with its own inbox prefix).
func connect(t *testing.T, s *server.Server, u *User, v *violations) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts := []nats.Option{nats.ErrorHandler(v.handler), nats.Name(u.Name)}
	if u.Workspace != "" {
		opts = append(opts, nats.CustomInboxPrefix(RunnerInbox(u.Workspace)))
	}
	if u.Seed != nil {
		path := filepath.Join(t.TempDir(), u.File())
		m := &Model{Gateway: *u}
		if err := m.Save(filepath.Dir(path)); err != nil {
			t.Fatal(err)
		}
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, opt)
	} else {
		opts = append(opts, nats.UserInfo(u.Name, u.Password))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", u.Name, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// consumerConfig is a workspace's work consumer.
func consumerConfig(ws string) jetstream.ConsumerConfig {
	return jetq.ConsumerConfig(ws, jetq.ConsumerOptions{})
}

// TestPermissions: under the generated users, the gateway does what the
// gateway does; the runner of workspace a consumes a's patches, publishes
// a's events and dead letters, keeps a's KV keys and answers a's control
// requests, and every attempt at b's subjects, consumer, keys or inbox is
// a permission violation that leaves b's patch queued.
func TestPermissions(t *testing.T) {
	for _, mode := range []Mode{Password, NKey} {
		t.Run(mode.String(), func(t *testing.T) { testPermissions(t, mode) })
	}
}

func testPermissions(t *testing.T, mode Mode) {
	m, err := Generate(mode, []string{"b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The gateway: streams, buckets, consumers, work, KV, control.
	gv := newViolations()
	gnc, gjs := connect(t, s, &m.Gateway, gv)
	if err := jetq.Ensure(ctx, gjs, jetq.EnsureOptions{}); err != nil {
		t.Fatalf("gateway: ensure the streams and buckets: %v", err)
	}
	for _, ws := range []string{"a", "b"} {
		if _, err := jetq.EnsureConsumer(ctx, gjs, ws, jetq.ConsumerOptions{}); err != nil {
			t.Fatalf("gateway: consumer of %s: %v", ws, err)
		}
		msg := jetq.NewWorkMsg(jetq.Work{Workspace: ws, ID: "p-" + ws, Received: time.Now(), Body: []byte(`{"id":"p-` + ws + `"}`)})
		if _, err := gjs.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("gateway: publish to %s: %v", ws, err)
		}
		ack, err := gjs.PublishMsg(ctx, msg)
		if err != nil || !ack.Duplicate {
			t.Fatalf("gateway: resend to %s = %+v, %v; want a duplicate", ws, ack, err)
		}
	}
	gkv, err := gjs.KeyValue(ctx, jetq.BucketPatches)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a.p-a", "b.p-b"} {
		if _, err := gkv.Create(ctx, key, []byte(`{"state":"queued"}`)); err != nil {
			t.Fatalf("gateway: KV create %s: %v", key, err)
		}
	}
	events, err := gjs.OrderedConsumer(ctx, jetq.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("gateway: ordered consumer of the events: %v", err)
	}

	// The runner of a: everything of its own.
	av := newViolations()
	anc, ajs := connect(t, s, m.Runner("a"), av)
	if _, err := ajs.Stream(ctx, jetq.StreamWork); err != nil {
		t.Fatalf("runner a: stream info: %v", err)
	}
	cons, err := jetq.EnsureConsumer(ctx, ajs, "a", jetq.ConsumerOptions{})
	if err != nil {
		t.Fatalf("runner a: its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(jetq.PriorityGroup))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, string(msg.Data()))
		if err := msg.InProgress(); err != nil {
			t.Fatalf("runner a: in progress: %v", err)
		}
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("runner a: ack: %v", err)
		}
	}
	if batch.Error() != nil || len(got) != 1 || got[0] != `{"id":"p-a"}` {
		t.Fatalf("runner a fetched %q (%v), want its one patch", got, batch.Error())
	}
	if _, err := ajs.Publish(ctx, jetq.SubjectEventsPrefix+"a", []byte(`{"id":"p-a","state":"applied"}`)); err != nil {
		t.Fatalf("runner a: publish its event: %v", err)
	}
	if _, err := ajs.Publish(ctx, jetq.SubjectDeadPrefix+"a", []byte(`{}`)); err != nil {
		t.Fatalf("runner a: publish its dead letter: %v", err)
	}
	akv, err := ajs.KeyValue(ctx, jetq.BucketPatches)
	if err != nil {
		t.Fatalf("runner a: KV bucket: %v", err)
	}
	if _, err := akv.Put(ctx, "a.p-a", []byte(`{"state":"applied"}`)); err != nil {
		t.Fatalf("runner a: KV put: %v", err)
	}
	if e, err := akv.Get(ctx, "a.p-a"); err != nil || string(e.Value()) != `{"state":"applied"}` {
		t.Fatalf("runner a: KV get = %v, %v", e, err)
	}
	wkv, err := ajs.KeyValue(ctx, jetq.BucketWorkspaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wkv.Put(ctx, "a", []byte(`{"name":"a"}`)); err != nil {
		t.Fatalf("runner a: workspace record: %v", err)
	}
	ctl, err := anc.QueueSubscribe(jetq.SubjectCtlPrefix+"a.*", "ctl-a", func(msg *nats.Msg) { _ = msg.Respond([]byte(`{"result":"ok"}`)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := anc.Flush(); err != nil {
		t.Fatal(err)
	}
	if reply, err := gnc.RequestWithContext(ctx, jetq.SubjectCtlPrefix+"a.preview", []byte(`{}`)); err != nil || string(reply.Data) != `{"result":"ok"}` {
		t.Fatalf("gateway: control request to a = %v, %v", reply, err)
	}
	_ = ctl.Unsubscribe()
	// The gateway reads the event the runner published.
	if ev, err := events.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || ev.Subject() != jetq.SubjectEventsPrefix+"a" {
		t.Fatalf("gateway: next event = %v, %v", ev, err)
	}
	if e, err := gkv.Get(ctx, "a.p-a"); err != nil || string(e.Value()) != `{"state":"applied"}` {
		t.Fatalf("gateway: KV get = %v, %v", e, err)
	}
	// The gateway's dead-letter path (gateway.DeadLetters): its consumer
	// of every workspace's advisories, a work message read and removed
	// by sequence, the dead letter and its event published.
	if _, err := gjs.CreateOrUpdateConsumer(ctx, jetq.StreamAdvisories, jetstream.ConsumerConfig{
		Durable: jetq.DeadConsumer, FilterSubject: jetq.SubjectAdvisories, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatalf("gateway: the advisories consumer: %v", err)
	}
	gwork, err := gjs.Stream(ctx, jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gwork.GetMsg(ctx, 2); err != nil {
		t.Fatalf("gateway: read work message 2: %v", err)
	}
	if _, err := gjs.Publish(ctx, jetq.SubjectDeadPrefix+"b", []byte(`{}`)); err != nil {
		t.Fatalf("gateway: publish b's dead letter: %v", err)
	}
	if _, err := gjs.Publish(ctx, jetq.SubjectEventsPrefix+"b", []byte(`{"id":"p-b","state":"failed"}`)); err != nil {
		t.Fatalf("gateway: publish b's event: %v", err)
	}
	if ev, err := events.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || ev.Subject() != jetq.SubjectEventsPrefix+"b" {
		t.Fatalf("gateway: next event = %v, %v", ev, err)
	}
	av.none(t)
	gv.none(t)

	// The runner of a against b: each a permission violation.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }
	denied := []struct {
		name, subject string
		try           func() error
	}{
		{"consume b's consumer", "$JS.API.CONSUMER.INFO.PATCHD.run-b", func() error {
			c, cancel := short()
			defer cancel()
			_, err := ajs.Consumer(c, jetq.StreamWork, jetq.ConsumerName("b"))
			return err
		}},
		{"fetch from b's consumer", "$JS.API.CONSUMER.MSG.NEXT.PATCHD.run-b", func() error {
			return anc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.PATCHD.run-b", anc.NewRespInbox(), []byte(`{"batch":1}`))
		}},
		{"unpin b's consumer", "$JS.API.CONSUMER.UNPIN.PATCHD.run-b", func() error {
			return anc.PublishRequest("$JS.API.CONSUMER.UNPIN.PATCHD.run-b", anc.NewRespInbox(), []byte(`{"group":"runners"}`))
		}},
		{"create b's consumer", "$JS.API.CONSUMER.CREATE.PATCHD.run-b.patchd.ws.b", func() error {
			c, cancel := short()
			defer cancel()
			_, err := ajs.CreateOrUpdateConsumer(c, jetq.StreamWork, consumerConfig("b"))
			return err
		}},
		{"point its consumer at b", "$JS.API.CONSUMER.CREATE.PATCHD.run-a.patchd.ws.b", func() error {
			c, cancel := short()
			defer cancel()
			cfg := consumerConfig("a")
			cfg.FilterSubject = jetq.SubjectWorkPrefix + "b"
			_, err := ajs.CreateOrUpdateConsumer(c, jetq.StreamWork, cfg)
			return err
		}},
		{"a consumer of its own name", "$JS.API.CONSUMER.CREATE.PATCHD.sneak.patchd.ws.b", func() error {
			c, cancel := short()
			defer cancel()
			cfg := consumerConfig("b")
			cfg.Durable = "sneak"
			_, err := ajs.CreateOrUpdateConsumer(c, jetq.StreamWork, cfg)
			return err
		}},
		{"subscribe b's work", "sub patchd.ws.b", func() error { _, err := anc.SubscribeSync("patchd.ws.b"); return err }},
		{"subscribe all inboxes", "sub _INBOX.>", func() error { _, err := anc.SubscribeSync("_INBOX.>"); return err }},
		{"subscribe b's inbox", "sub _INBOX_b.>", func() error { _, err := anc.SubscribeSync("_INBOX_b.>"); return err }},
		{"subscribe b's control", "sub patchd.ctl.b.*", func() error { _, err := anc.SubscribeSync("patchd.ctl.b.*"); return err }},
		{"publish work", "patchd.ws.b", func() error { return anc.Publish("patchd.ws.b", []byte(`{}`)) }},
		{"publish b's events", "patchd.events.b", func() error { return anc.Publish("patchd.events.b", []byte(`{}`)) }},
		{"publish b's dead letters", "patchd.dead.b", func() error { return anc.Publish("patchd.dead.b", []byte(`{}`)) }},
		{"request b's control", "patchd.ctl.b.read_file", func() error {
			c, cancel := short()
			defer cancel()
			_, err := anc.RequestWithContext(c, "patchd.ctl.b.read_file", []byte(`{}`))
			return err
		}},
		{"read b's KV key", "$JS.API.DIRECT.GET.KV_PATCHD_PATCHES.$KV.PATCHD_PATCHES.b.p-b", func() error {
			c, cancel := short()
			defer cancel()
			_, err := akv.Get(c, "b.p-b")
			return err
		}},
		{"write b's KV key", "$KV.PATCHD_PATCHES.b.p-b", func() error {
			c, cancel := short()
			defer cancel()
			_, err := akv.Put(c, "b.p-b", []byte(`{"state":"applied"}`))
			return err
		}},
		{"write b's workspace record", "$KV.PATCHD_WORKSPACES.b", func() error {
			c, cancel := short()
			defer cancel()
			_, err := wkv.Put(c, "b", []byte(`{}`))
			return err
		}},
		{"update the work stream", "$JS.API.STREAM.UPDATE.PATCHD", func() error {
			c, cancel := short()
			defer cancel()
			_, err := ajs.UpdateStream(c, jetstream.StreamConfig{Name: jetq.StreamWork, Subjects: []string{">"}})
			return err
		}},
		// b's patch is message 2 of the work stream: neither read nor
		// removed by its sequence (the gateway buries dead letters).
		{"read b's patch by sequence", "$JS.API.STREAM.MSG.GET.PATCHD", func() error {
			c, cancel := short()
			defer cancel()
			st, err := ajs.Stream(c, jetq.StreamWork)
			if err != nil {
				return err
			}
			_, err = st.GetMsg(c, 2)
			return err
		}},
		{"direct-get b's patch by sequence", "$JS.API.DIRECT.GET.PATCHD", func() error {
			return anc.PublishRequest("$JS.API.DIRECT.GET.PATCHD", anc.NewRespInbox(), []byte(`{"seq":2}`))
		}},
		{"delete b's patch by sequence", "$JS.API.STREAM.MSG.DELETE.PATCHD", func() error {
			c, cancel := short()
			defer cancel()
			st, err := ajs.Stream(c, jetq.StreamWork)
			if err != nil {
				return err
			}
			return st.DeleteMsg(c, 2)
		}},
		{"consume the advisories", "$JS.API.CONSUMER.CREATE.PATCHD_ADVISORIES.dead-a.$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.PATCHD.run-a", func() error {
			c, cancel := short()
			defer cancel()
			_, err := ajs.CreateOrUpdateConsumer(c, jetq.StreamAdvisories, jetstream.ConsumerConfig{
				Durable: "dead-a", FilterSubject: jetq.AdvisorySubject("a"), AckPolicy: jetstream.AckExplicitPolicy,
			})
			return err
		}},
		{"purge the work stream", "$JS.API.STREAM.PURGE.PATCHD", func() error {
			c, cancel := short()
			defer cancel()
			st, err := ajs.Stream(c, jetq.StreamWork)
			if err != nil {
				return err
			}
			return st.Purge(c)
		}},
	}
	for _, d := range denied {
		t.Run(d.name, func(t *testing.T) {
			_ = d.try()
			av.waitFor(t, d.subject)
		})
	}

	// b's patch is still queued, and b's key untouched.
	info, err := gjs.Stream(ctx, jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("work stream holds %d messages, want 1 (b's)", n)
	}
	if e, err := gkv.Get(ctx, "b.p-b"); err != nil || string(e.Value()) != `{"state":"queued"}` {
		t.Errorf("b's key = %v, %v; want it queued", e, err)
	}
	// The runner of b still gets it, connected as natsrun does
	// (jetq.Connect with its inbox prefix).
	b := m.Runner("b")
	co := jetq.Options{URL: s.ClientURL(), Name: b.Name, InboxPrefix: jetq.RunnerInbox("b")}
	if b.Seed != nil {
		dir := t.TempDir()
		if err := (&Model{Gateway: *b}).Save(dir); err != nil {
			t.Fatal(err)
		}
		co.NKeyFile = filepath.Join(dir, b.File())
	} else {
		co.User, co.Password = b.Name, b.Password
	}
	bnc, bjs, err := jetq.Connect(ctx, co)
	if err != nil {
		t.Fatal(err)
	}
	defer bnc.Close()
	bcons, err := bjs.Consumer(ctx, jetq.StreamWork, jetq.ConsumerName("b"))
	if err != nil {
		t.Fatal(err)
	}
	bmsg, err := bcons.Next(jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(jetq.PriorityGroup))
	if err != nil || string(bmsg.Data()) != `{"id":"p-b"}` {
		t.Fatalf("runner b: next = %v, %v", bmsg, err)
	}
	if err := bmsg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if lasterr := bnc.LastError(); lasterr != nil {
		t.Fatalf("runner b: %v", lasterr)
	}
}

// TestWrongPassword: a user with another's password, or none, is not let in.
func TestWrongPassword(t *testing.T) {
	m, err := Generate(Password, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, m)
	for _, tc := range []struct{ user, password string }{
		{"run-a", m.Runner("b").Password},
		{"gateway", ""},
		{"", ""},
	} {
		nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(tc.user, tc.password), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Errorf("connect as %q with %q: succeeded", tc.user, tc.password)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(err.Error(), "Authorization") {
			t.Errorf("connect as %q: %v, want an authorization error", tc.user, err)
		}
	}
}
