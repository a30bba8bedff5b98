package natsrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// local is a daemon's service over a real store, workspace and worker.
type local struct {
	svc   *patchsvc.Service
	ws    string
	state string
}

func newLocal(t *testing.T) *local {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o700)
	st, err := store.Open(filepath.Join(state, "queue"), store.Options{EventsPath: filepath.Join(state, "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	wsDir := filepath.Join(dir, "ws")
	os.MkdirAll(wsDir, 0o755)
	if err := os.WriteFile(filepath.Join(wsDir, "f.txt"), []byte("v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(worker.Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(state, "summaries")})
	svc := patchsvc.New(patchsvc.Options{Store: st, Workspace: ws, Worker: wk})
	ctx, cancel := context.WithCancel(context.Background())
	worked := make(chan struct{})
	go func() { wk.Run(ctx); close(worked) }()
	t.Cleanup(func() {
		cancel()
		<-worked
		st.Close()
		ws.Close()
	})
	return &local{svc: svc, ws: wsDir, state: state}
}

func startRunner(t *testing.T, l *local, url, ws string, maxDeliver int, ackWait time.Duration) *Runner {
	t.Helper()
	r, err := Start(Options{Service: l.svc, StateDir: l.state, Instance: "test", StatusEvery: time.Second, MaxBodyBytes: 64 << 10,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Queue:  config.Queue{URLs: []string{url}, Workspace: ws, MaxDeliver: maxDeliver, AckWait: ackWait}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

// syncLog keeps a runner's log for the test to read, and shows it.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(l, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func block(id, from, to string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "role": "ci_patch", "target_file": "f.txt",
		"patch": map[string]any{"search": from, "replace": to}})
	return b
}

// publish publishes a work message as the gateway does (its
// Nats-Expected-Stream header included).
func publish(t *testing.T, js jetstream.JetStream, ws, id string, body []byte) {
	t.Helper()
	m := jetq.NewWorkMsg(jetq.Work{Workspace: ws, ID: id, Received: time.Now(), Body: body})
	if _, err := js.PublishMsg(context.Background(), m, jetstream.WithExpectStream(jetq.StreamWork)); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within 20 s; last: %s", what, last)
}

func view(t *testing.T, js jetstream.JetStream, ws, id string) (api.PatchView, error) {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), jetq.BucketPatches)
	if err != nil {
		return api.PatchView{}, err
	}
	e, err := kv.Get(context.Background(), jetq.PatchKey(ws, id))
	if err != nil {
		return api.PatchView{}, err
	}
	return jetq.DecodeView(e.Value())
}

// events reads every event of a workspace from the events stream.
func events(t *testing.T, js jetstream.JetStream, ws string) []api.Event {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, jetq.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{jetq.EventsSubject(ws)}})
	if err != nil {
		t.Fatal(err)
	}
	var out []api.Event
	for {
		b, err := c.Fetch(100, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			var e api.Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		if n == 0 {
			return out
		}
	}
}

func workLeft(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestAppliesInOrderOnce: patches published as the gateway publishes them
// are applied in the queue's order, each once; one delivered again (the
// same body under another message id, as a redelivery is) is a Duplicate
// acknowledged without a second apply; each has its view in the KV bucket
// and its events on patchd.events.<ws>, and the work queue is empty.
func TestAppliesInOrderOnce(t *testing.T) {
	srv := jetqtest.Server(t)
	_, js := jetqtest.Connect(t, srv)
	l := newLocal(t)
	r := startRunner(t, l, srv.ClientURL(), "api", 3, 2*time.Second)
	const n = 6
	for i := range n {
		publish(t, js, "api", fmt.Sprintf("P%d", i), block(fmt.Sprintf("P%d", i), fmt.Sprintf("v%d\n", i), fmt.Sprintf("v%d\n", i+1)))
	}
	// P2 again, as a redelivery: JetStream's dedup does not stop it.
	m := nats.NewMsg(jetq.WorkSubject("api"))
	m.Data = block("P2", "v2\n", "v3\n")
	if _, err := js.PublishMsg(context.Background(), m, jetstream.WithExpectStream(jetq.StreamWork)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every patch applied", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt"))
		return string(b) == fmt.Sprintf("v%d\n", n) && workLeft(t, js) == 0, fmt.Sprintf("file %q, %d messages left", b, workLeft(t, js))
	})
	list, err := l.svc.List(context.Background(), api.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Patches) != n {
		t.Errorf("the journal holds %d patches, want %d", len(list.Patches), n)
	}
	for _, p := range list.Patches {
		if p.State != api.StateApplied {
			t.Errorf("patch %s is %s: %s", p.ID, p.State, p.Error)
		}
	}
	eventually(t, "views and events", func() (bool, string) {
		for i := range n {
			v, err := view(t, js, "api", fmt.Sprintf("P%d", i))
			if err != nil || v.State != api.StateApplied || v.Workspace != "api" {
				return false, fmt.Sprintf("P%d: %+v %v", i, v, err)
			}
		}
		applied := 0
		for _, e := range events(t, js, "api") {
			if e.Workspace != "api" {
				return false, fmt.Sprintf("event without its workspace: %+v", e)
			}
			if e.Event == "patch.applied" {
				applied++
			}
		}
		return applied == n, fmt.Sprintf("%d patch.applied events", applied)
	})
	kv, err := js.KeyValue(context.Background(), jetq.BucketWorkspaces)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the workspace's record", func() (bool, string) {
		e, err := kv.Get(context.Background(), "api")
		if err != nil {
			return false, err.Error()
		}
		var rec jetq.WorkspaceRecord
		json.Unmarshal(e.Value(), &rec)
		return rec.Name == "api" && rec.Status.Queue.Applied == n, string(e.Value())
	})
	if st := r.Status(); !st.Connected || st.Workspace != "api" || st.URL != srv.ClientURL() || st.Error != "" {
		t.Errorf("Status() = %+v, want connected to %s for api", st, srv.ClientURL())
	}

	// The consumer removed by hand: the runner makes it again.
	if err := js.DeleteConsumer(context.Background(), jetq.StreamWork, jetq.ConsumerName("api")); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "api", "P-after", block("P-after", fmt.Sprintf("v%d\n", n), "done\n"))
	eventually(t, "a patch applied after the consumer was removed", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt"))
		return string(b) == "done\n", string(b)
	})
}

// TestPoisonDeadLetter: a message the runner's Submit refuses every time
// becomes, on its MaxDeliver-th delivery, a dead letter: on
// patchd.dead.<ws> with its headers, gone from the work queue, its view
// failed with code dead_letter and the last refusal, and its event
// published; the queue goes on behind it.
func TestPoisonDeadLetter(t *testing.T) {
	srv := jetqtest.Server(t)
	_, js := jetqtest.Connect(t, srv)
	l := newLocal(t)
	startRunner(t, l, srv.ClientURL(), "w1", 2, 300*time.Millisecond)
	poison := []byte(`{"id": "bad-1", "target_file": "f.txt", "patch": {"search": "v0\n", "replace": "x\n"}}`) // no role
	publish(t, js, "w1", "bad-1", poison)
	// Another workspace's block, published around the gateway.
	other := []byte(`{"workspace": "w2", "id": "bad-2", "role": "r", "target_file": "f.txt", "patch": {"search": "v0\n", "replace": "x\n"}}`)
	publish(t, js, "w1", "bad-2", other)
	publish(t, js, "w1", "good-1", block("good-1", "v0\n", "v1\n"))

	dead, err := js.Stream(context.Background(), jetq.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the dead letter", func() (bool, string) {
		m, err := dead.GetMsg(context.Background(), 1)
		if err != nil {
			return false, err.Error()
		}
		if m.Subject != jetq.DeadSubject("w1") {
			return false, "dead letter on " + m.Subject
		}
		if string(m.Data) != string(poison) || m.Header.Get(jetq.HeaderID) != "bad-1" || m.Header.Get(jetq.HeaderDeliveries) != "2" {
			return false, fmt.Sprintf("dead letter %q %v", m.Data, m.Header)
		}
		return workLeft(t, js) == 0, fmt.Sprintf("%d messages left", workLeft(t, js))
	})
	eventually(t, "the view and the event", func() (bool, string) {
		v, err := view(t, js, "w1", "bad-1")
		if err != nil || v.State != api.StateFailed || v.Code != jetq.CodeDeadLetter || !strings.Contains(v.Error, "delivered 2 times") || !strings.Contains(v.Error, "the last refusal: Missing required field: role") {
			return false, fmt.Sprintf("%+v %v", v, err)
		}
		for _, e := range events(t, js, "w1") {
			if e.ID == "bad-1" && e.Code == jetq.CodeDeadLetter && e.State == api.StateFailed {
				return true, ""
			}
		}
		return false, "no dead_letter event"
	})
	eventually(t, "the other workspace's block buried", func() (bool, string) {
		v, err := view(t, js, "w1", "bad-2")
		return err == nil && v.Code == jetq.CodeDeadLetter, fmt.Sprintf("%+v %v", v, err)
	})
	eventually(t, "the patch behind it", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt"))
		return string(b) == "v1\n", string(b)
	})
	for _, id := range []string{"bad-1", "bad-2"} {
		if _, err := l.svc.Get(context.Background(), id); err == nil {
			t.Errorf("the refused patch %s is in the journal", id)
		}
	}
}

// TestControl: the gateway's control requests are answered by the
// service: a preview, a file read, a refusal with its kind and code, an
// unknown operation.
func TestControl(t *testing.T) {
	srv := jetqtest.Server(t)
	nc, _ := jetqtest.Connect(t, srv)
	l := newLocal(t)
	startRunner(t, l, srv.ClientURL(), "c", 3, 2*time.Second)
	ask := func(op string, req any, res any) error {
		b, _ := json.Marshal(req)
		var reply *nats.Msg
		var err error
		eventually(t, "a control answer", func() (bool, string) {
			reply, err = nc.Request(jetq.CtlSubject("c", op), b, 5*time.Second)
			return !errors.Is(err, nats.ErrNoResponders), fmt.Sprint(err)
		})
		if err != nil {
			t.Fatal(err)
		}
		return jetq.DecodeReply(reply.Data, res)
	}
	var pr api.PreviewResult
	if err := ask(jetq.OpPreview, api.PreviewRequest{Body: block("p", "v0\n", "v9\n")}, &pr); err != nil || !strings.Contains(pr.Diff, "+v9") {
		t.Errorf("preview = %+v, %v; want a diff adding v9", pr, err)
	}
	err := ask(jetq.OpPreview, api.PreviewRequest{Body: block("big", strings.Repeat("x", 65<<10), "y")}, &pr)
	if e := api.ErrorOf(err); e == nil || e.Kind != api.KindTooLarge || !strings.Contains(e.Message, "--max-body") {
		t.Errorf("preview of a block over --max-body = %v, want too_large naming --max-body", err)
	}
	var ft api.FileText
	if err := ask(jetq.OpReadFile, api.ReadFileRequest{Path: "f.txt"}, &ft); err != nil || !strings.Contains(ft.Text, "v0") {
		t.Errorf("read_file = %+v, %v", ft, err)
	}
	var pv api.PatchView
	err = ask(jetq.OpRevert, jetq.IDRequest{ID: "nope"}, &pv)
	if e := api.ErrorOf(err); e == nil || e.Kind != api.KindNotFound || e.Code != api.CodePatchNotFound {
		t.Errorf("revert of an unknown patch = %v, want not_found patch_not_found", err)
	}
	err = ask("format_disk", struct{}{}, &pv)
	if e := api.ErrorOf(err); e == nil || e.Field != "op" {
		t.Errorf("an unknown operation = %v, want a refusal naming op", err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt")); string(b) != "v0\n" {
		t.Errorf("the preview wrote the file: %q", b)
	}
}

// TestNATSDown: with no NATS server the runner says it is not connected
// and why, stops at once, and takes patches as soon as a server is there.
func TestNATSDown(t *testing.T) {
	dir := t.TempDir()
	probe := jetqtest.ServerAt(t, dir, -1)
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Shutdown()
	probe.WaitForShutdown()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	l := newLocal(t)
	r := startRunner(t, l, url, "d", 3, 2*time.Second)
	eventually(t, "not connected, with a reason", func() (bool, string) {
		st := r.Status()
		return !st.Connected && st.Error != "" && st.Error != "connecting", fmt.Sprintf("%+v", st)
	})
	if st := r.Status(); strings.Contains(st.Error, "password") {
		t.Errorf("Status().Error = %q", st.Error)
	}
	srv := jetqtest.ServerAt(t, dir, port)
	_, js := jetqtest.Connect(t, srv)
	publish(t, js, "d", "late", block("late", "v0\n", "v1\n"))
	eventually(t, "the patch applied once NATS is up", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(l.ws, "f.txt"))
		return string(b) == "v1\n" && r.Status().Connected, fmt.Sprintf("%q %+v", b, r.Status())
	})
}

// TestCursorOfAnotherJournal: a cursor past the journal's last event (the
// queue was removed, natsrun.json kept) starts after the journal's last
// event with a new journal id, so its events are neither skipped nor taken
// for the old ones by JetStream's dedup.
func TestCursorOfAnotherJournal(t *testing.T) {
	l := newLocal(t)
	path := filepath.Join(l.state, CursorFile)
	if err := os.WriteFile(path, []byte(`{"workspace":"w","journal":"old","published":999}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := openCursor(l.state, "w", l.svc)
	if err != nil {
		t.Fatal(err)
	}
	if c.published() != 0 || c.journal() == "old" {
		t.Errorf("cursor = %+v, want published 0 and a new journal", c.st)
	}
	c.set(0)
	c2, err := openCursor(l.state, "w", l.svc)
	if err != nil || c2.journal() != c.journal() {
		t.Errorf("reopened cursor = %+v, %v; want journal %s kept", c2.st, err, c.journal())
	}
	c3, err := openCursor(l.state, "other", l.svc)
	if err != nil || c3.journal() == c.journal() {
		t.Errorf("cursor for another workspace = %+v, %v; want a new journal", c3.st, err)
	}
}
