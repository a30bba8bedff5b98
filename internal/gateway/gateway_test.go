package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/gateway"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newService(t *testing.T, js jetstream.JetStream, listed ...string) *gateway.Service {
	t.Helper()
	s, err := gateway.New(ctxT(t), gateway.Options{JS: js, Workspaces: listed, CtlTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func block(ws, id string) []byte {
	b := fmt.Sprintf(`{"id":%q,"role":"test","target_file":"src/a.txt","patch":{"search":"a","replace":"b"}`, id)
	if ws != "" {
		b += fmt.Sprintf(`,"workspace":%q`, ws)
	}
	return []byte(b + "}")
}

func apiErr(t *testing.T, err error, kind api.Kind, code, field string) *api.Error {
	t.Helper()
	e, ok := errors.AsType[*api.Error](err)
	if !ok {
		t.Fatalf("error %v (%T), want an *api.Error %s/%s", err, err, kind, code)
	}
	if e.Kind != kind || e.Code != code || e.Field != field {
		t.Fatalf("error %s/%s field %q: %s; want %s/%s field %q", e.Kind, e.Code, e.Field, e.Message, kind, code, field)
	}
	return e
}

func workMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(ctxT(t), jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestSubmitDedup: the same patch sent twice is one message in the work
// queue; the second answer is a Duplicate, as the daemon answers a resend.
func TestSubmitDedup(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web")
	ctx := ctxT(t)
	r1, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "p.1")})
	if err != nil || r1.Duplicate || r1.State != api.StateQueued || r1.PatchID != "p.1" {
		t.Fatalf("first Submit = %+v, %v", r1, err)
	}
	r2, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "p.1")})
	if err != nil || !r2.Duplicate || r2.State != api.StateQueued {
		t.Fatalf("resend = %+v, %v; want a duplicate", r2, err)
	}
	if n := workMsgs(t, js); n != 1 {
		t.Fatalf("%d messages in the work queue, want 1", n)
	}
	// The same id in another workspace is another patch.
	if _, err := js.KeyValue(ctx, jetq.BucketWorkspaces); err != nil {
		t.Fatal(err)
	}
	s2 := newService(t, js, "web", "api")
	if r, err := s2.Submit(ctx, api.SubmitRequest{Body: block("api", "p.1")}); err != nil || r.Duplicate {
		t.Fatalf("same id, other workspace = %+v, %v", r, err)
	}
	if n := workMsgs(t, js); n != 2 {
		t.Fatalf("%d messages in the work queue, want 2", n)
	}
	// The message carries the envelope a runner reads.
	st, _ := js.Stream(ctx, jetq.StreamWork)
	m, err := st.GetLastMsgForSubject(ctx, jetq.WorkSubject("web"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := jetq.ReadWork(m.Subject, m.Header, m.Data)
	if err != nil || w.ID != "p.1" || w.Workspace != "web" || string(w.Body) != string(block("web", "p.1")) || w.Received.IsZero() {
		t.Fatalf("work message %+v, %v", w, err)
	}
	v, err := s2.Get(ctx, "p.1")
	apiErr(t, err, api.KindConflict, gateway.CodeWorkspaceAmbiguous, "workspace")
	b, _ := s.Bind("web")
	if v, err = b.Get(ctx, "p.1"); err != nil || v.State != api.StateQueued || v.Workspace != "web" || v.Role != "test" {
		t.Fatalf("Get = %+v, %v", v, err)
	}
}

// TestSubmitRefusals: the daemon's refusals at intake, and the
// workspace's: missing, invalid, unknown (404 naming those that exist),
// disagreeing with the address it was sent to.
func TestSubmitRefusals(t *testing.T) {
	nc, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web")
	ctx := ctxT(t)
	kv, err := js.KeyValue(ctx, jetq.BucketWorkspaces)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(jetq.WorkspaceRecord{Name: "api", UpdatedAt: time.Now()})
	if _, err := kv.Put(ctx, "api", rec); err != nil {
		t.Fatal(err)
	}
	_, err = s.Submit(ctx, api.SubmitRequest{Body: block("", "x")})
	apiErr(t, err, api.KindInvalid, api.CodeFieldMissing, "workspace")
	_, err = s.Submit(ctx, api.SubmitRequest{Body: block("a.b", "x")})
	apiErr(t, err, api.KindInvalid, api.CodeFieldInvalid, "workspace")
	_, err = s.Submit(ctx, api.SubmitRequest{Body: []byte(`{"id":"x","role":"r","target_file":"a","patch":{"search":"a","replace":"b"},"workspace":7}`)})
	apiErr(t, err, api.KindInvalid, api.CodeFieldInvalid, "workspace")
	_, err = s.Submit(ctx, api.SubmitRequest{Body: block("mobile", "x")})
	e := apiErr(t, err, api.KindNotFound, gateway.CodeWorkspaceUnknown, "workspace")
	if !strings.Contains(e.Message, `"mobile"`) || !strings.Contains(e.Message, "api, web") || e.Kind.HTTPStatus() != 404 {
		t.Errorf("unknown workspace: %q", e.Message)
	}
	_, err = s.Submit(ctx, api.SubmitRequest{Body: []byte(`{"id":"x","role":"r"`)})
	apiErr(t, err, api.KindInvalid, api.CodeMalformedJSON, "")
	_, err = s.Submit(ctx, api.SubmitRequest{Body: []byte(`{"id":"x/y","role":"r","target_file":"a","patch":{"search":"a","replace":"b"},"workspace":"web"}`)})
	apiErr(t, err, api.KindInvalid, api.CodeFieldInvalid, "id")
	for path, code := range map[string]string{
		"../etc/passwd":   api.CodePathOutside,
		"/etc/passwd":     api.CodePathOutside,
		".git/config":     api.CodePathGit,
		"a/.GIT/hooks/x":  api.CodePathGit,
		".patchd/token":   api.CodePathProtected,
		"src/../../x":     api.CodePathOutside,
		"a\\b":            api.CodePathInvalid,
		"src/":            api.CodePathInvalid,
		"x/../.patchd/db": api.CodePathProtected,
	} {
		body := fmt.Sprintf(`{"id":"x","role":"r","target_file":%q,"patch":{"search":"a","replace":"b"},"workspace":"web"}`, path)
		_, err = s.Submit(ctx, api.SubmitRequest{Body: []byte(body)})
		e, ok := errors.AsType[*api.Error](err)
		if !ok || e.Kind != api.KindInvalid || e.Code != code || e.Field != "target_file" {
			t.Errorf("target_file %q: %#v, want invalid %s naming target_file", path, err, code)
		}
	}
	b, _ := s.Bind("web")
	_, err = b.Submit(ctx, api.SubmitRequest{Body: block("api", "x")})
	apiErr(t, err, api.KindInvalid, api.CodeFieldInvalid, "workspace")
	if n := workMsgs(t, js); n != 0 {
		t.Fatalf("%d messages queued by refused patches", n)
	}
	// Bound: no field needed; the field, when given, agrees.
	for i, body := range [][]byte{block("", "y1"), block("web", "y2")} {
		if r, err := b.Submit(ctx, api.SubmitRequest{Body: body}); err != nil || r.State != api.StateQueued {
			t.Fatalf("bound Submit %d = %+v, %v", i, r, err)
		}
	}
	// Queued with no runner at all: the message waits in the queue.
	if n := workMsgs(t, js); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	_ = nc
}

// TestRestartKeepsAcknowledged: every patch a gateway acknowledged is in
// the queue and the bucket for a new gateway, and after the NATS server
// itself restarts over the same store.
func TestRestartKeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	srv := jetqtest.ServerAt(t, dir, -1)
	nc, js := jetqtest.Connect(t, srv)
	s := newService(t, js, "web")
	ctx := ctxT(t)
	const n = 20
	for i := range n {
		if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", fmt.Sprint("r", i))}); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	srv2 := jetqtest.ServerAt(t, dir, -1)
	_, js2 := jetqtest.Connect(t, srv2)
	s2 := newService(t, js2, "web")
	if got := workMsgs(t, js2); got != n {
		t.Fatalf("%d messages in the queue after the restart, want %d", got, n)
	}
	b, _ := s2.Bind("web")
	for i := range n {
		if v, err := b.Get(ctx, fmt.Sprint("r", i)); err != nil || v.State != api.StateQueued {
			t.Fatalf("r%d after the restart: %+v, %v", i, v, err)
		}
	}
	// A resend to the new gateway within the window is still a duplicate.
	if r, err := s2.Submit(ctx, api.SubmitRequest{Body: block("web", "r0")}); err != nil || !r.Duplicate {
		t.Fatalf("resend after the restart = %+v, %v", r, err)
	}
}

// putView stands in for a runner: it puts a patch's view.
func putView(t *testing.T, js jetstream.JetStream, v api.PatchView) {
	t.Helper()
	kv, err := js.KeyValue(ctxT(t), jetq.BucketPatches)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jetq.EncodeView(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctxT(t), jetq.PatchKey(v.Workspace, v.ID), b); err != nil {
		t.Fatal(err)
	}
}

// TestGetList: views come from the bucket: newest change first, in pages
// with a cursor, filtered by state and by the bound workspace, without
// diffs; Get has the diff.
func TestGetList(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web", "api")
	ctx := ctxT(t)
	for i := range 30 {
		ws := "web"
		if i%3 == 0 {
			ws = "api"
		}
		putView(t, js, api.PatchView{ID: fmt.Sprintf("p:%02d", i), Workspace: ws, State: api.StateQueued, Role: "r"})
	}
	// Updates supersede: the bucket keeps one view per key.
	for i := range 30 {
		if i%2 == 0 {
			ws := "web"
			if i%3 == 0 {
				ws = "api"
			}
			putView(t, js, api.PatchView{ID: fmt.Sprintf("p:%02d", i), Workspace: ws, State: api.StateApplied, Role: "r", Diff: "--- a\n+++ b\n"})
		}
	}
	var all []api.PatchView
	cursor := ""
	for pages := 0; ; pages++ {
		l, err := s.List(ctx, api.ListOptions{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l.Patches...)
		if cursor = l.NextCursor; cursor == "" || pages > 10 {
			break
		}
	}
	if len(all) != 30 {
		t.Fatalf("listed %d patches, want 30", len(all))
	}
	seen := map[string]bool{}
	for _, v := range all {
		if seen[v.ID] || v.Diff != "" || v.Workspace == "" {
			t.Fatalf("listed %+v (twice, with a diff or without its workspace)", v)
		}
		seen[v.ID] = true
	}
	if all[0].ID != "p:28" || all[0].State != api.StateApplied || all[len(all)-1].ID != "p:01" {
		t.Errorf("order: first %s, last %s; want the last changed first (p:28 … p:01)", all[0].ID, all[len(all)-1].ID)
	}
	l, err := s.List(ctx, api.ListOptions{State: api.StateApplied, Limit: 100})
	if err != nil || len(l.Patches) != 15 {
		t.Fatalf("applied: %d, %v; want 15", len(l.Patches), err)
	}
	b, _ := s.Bind("api")
	l, err = b.List(ctx, api.ListOptions{Limit: 100})
	if err != nil || len(l.Patches) != 10 {
		t.Fatalf("bound to api: %d, %v; want 10", len(l.Patches), err)
	}
	for _, v := range l.Patches {
		if v.Workspace != "api" {
			t.Fatalf("bound listing shows %+v", v)
		}
	}
	v, err := s.Get(ctx, "p:28")
	if err != nil || v.Workspace != "web" || v.State != api.StateApplied || v.Diff == "" {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	_, err = s.Get(ctx, "nope")
	apiErr(t, err, api.KindNotFound, api.CodePatchNotFound, "id")
	_, err = b.Get(ctx, "p:28") // web's, not api's
	apiErr(t, err, api.KindNotFound, api.CodePatchNotFound, "id")
	for _, o := range []api.ListOptions{{Limit: -1}, {Limit: api.MaxListLimit + 1}, {State: "done"}, {Cursor: "x"}, {Cursor: "0"}} {
		if _, err := s.List(ctx, o); err == nil {
			t.Errorf("List(%+v) accepted", o)
		}
	}
}

// TestEventsAndWait: the events stream numbers events by its sequence and
// names their workspace; Wait returns once a finished event comes.
func TestEventsAndWait(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web", "api")
	ctx := ctxT(t)
	if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "w1")}); err != nil {
		t.Fatal(err)
	}
	publish := func(ws string, e api.Event) {
		b, _ := json.Marshal(e)
		if _, err := js.Publish(ctx, jetq.EventsSubject(ws), b); err != nil {
			t.Fatal(err)
		}
	}
	publish("api", api.Event{EventID: 99, Event: "patch.submitted", ID: "other", State: api.StateQueued})
	done := make(chan api.PatchView, 1)
	go func() {
		v, err := s.Wait(ctx, "w1")
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	sub, err := s.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own event of w1's submission comes first.
	if e := <-sub.Events(); e.EventID != 1 || e.Workspace != "web" || e.ID != "w1" || e.Event != "patch.submitted" {
		t.Fatalf("first event %+v", e)
	}
	if e := <-sub.Events(); e.EventID != 2 || e.Workspace != "api" || e.ID != "other" {
		t.Fatalf("second event %+v", e)
	}
	publish("web", api.Event{EventID: 7, Event: "patch.applying", ID: "w1", State: api.StateApplying})
	publish("web", api.Event{EventID: 8, Event: "patch.failed", ID: "w1", State: api.StateFailed, Error: "no match", Code: api.CodeMatchNotFound})
	for _, want := range []uint64{3, 4} {
		if e := <-sub.Events(); e.EventID != want || e.Workspace != "web" {
			t.Fatalf("event %+v, want id %d of web", e, want)
		}
	}
	select {
	case v := <-done:
		if v.State != api.StateFailed || v.Code != api.CodeMatchNotFound || v.Workspace != "web" {
			t.Fatalf("Wait = %+v", v)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return")
	}
	b, _ := s.Bind("api")
	bsub, err := b.Subscribe(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	publish("api", api.Event{Event: "patch.applied", ID: "other", State: api.StateApplied})
	if e := <-bsub.Events(); e.EventID != 5 || e.Workspace != "api" {
		t.Fatalf("bound subscription: %+v", e)
	}
	_, err = s.Subscribe(ctx, 6)
	apiErr(t, err, api.KindGone, api.CodeEventsLost, "")
	st, err := s.Status(ctx)
	if err != nil || st.LastEventID != 5 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

// TestControl: preview, revert, drop and the files are requests to the
// workspace's runner; none connected is runner_unavailable (503).
func TestControl(t *testing.T) {
	nc, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web")
	ctx := ctxT(t)
	if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "c1")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Revert(ctx, "c1")
	e := apiErr(t, err, api.KindUnavailable, gateway.CodeRunnerUnavailable, "workspace")
	if e.Kind.HTTPStatus() != 503 || !strings.Contains(e.Message, "web") {
		t.Errorf("no runner: %q", e.Message)
	}
	// A runner that answers.
	sub, err := nc.QueueSubscribe(jetq.CtlWildcard("web"), jetq.CtlQueue("web"), func(m *nats.Msg) {
		switch op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]; op {
		case jetq.OpDrop:
			var r jetq.IDRequest
			json.Unmarshal(m.Data, &r)
			m.Respond(jetq.EncodeReply(api.PatchView{ID: r.ID, State: api.StateFailed, Code: "dropped"}, nil))
		case jetq.OpRevert:
			m.Respond(jetq.EncodeReply(nil, api.Errorf(api.KindConflict, api.CodeNotApplied, "", "patch c1 is queued")))
		case jetq.OpReadFile:
			var r api.ReadFileRequest
			json.Unmarshal(m.Data, &r)
			m.Respond(jetq.EncodeReply(api.FileText{Path: r.Path, Text: "     1\thi\n"}, nil))
		case jetq.OpPreview:
			var r api.PreviewRequest
			json.Unmarshal(m.Data, &r)
			m.Respond(jetq.EncodeReply(api.PreviewResult{PatchID: "c2", Diff: string(r.Body[:1])}, nil))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if v, err := s.Drop(ctx, "c1"); err != nil || v.State != api.StateFailed || v.Workspace != "web" {
		t.Fatalf("Drop = %+v, %v", v, err)
	}
	_, err = s.Revert(ctx, "c1")
	apiErr(t, err, api.KindConflict, api.CodeNotApplied, "")
	if f, err := s.ReadFile(ctx, api.ReadFileRequest{Path: "a.txt"}); err != nil || f.Path != "a.txt" {
		t.Fatalf("ReadFile = %+v, %v", f, err)
	}
	if p, err := s.Preview(ctx, api.PreviewRequest{Body: block("web", "c2")}); err != nil || p.Diff != "{" {
		t.Fatalf("Preview = %+v, %v", p, err)
	}
	_, err = s.Preview(ctx, api.PreviewRequest{Body: block("web", "../x")})
	apiErr(t, err, api.KindInvalid, api.CodeFieldInvalid, "id")
	_, err = s.Drop(ctx, "nope")
	apiErr(t, err, api.KindNotFound, api.CodePatchNotFound, "id")
}

// TestSubmitConflict: as the daemon, the gateway refuses an id sent again
// with another body (409 id_conflict, nothing queued) unless the patch
// failed, when it is a new attempt; the same body sent again once the
// patch has a view is a Duplicate with its state, whatever the dedup
// window. Before, the other body was queued, refused by the runner's
// daemon on every delivery and made a dead letter, whose view replaced
// the applied patch's.
func TestSubmitConflict(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web")
	ctx := ctxT(t)
	other := []byte(`{"id":"c.1","role":"test","target_file":"src/b.txt","patch":{"search":"x","replace":"y"},"workspace":"web"}`)
	if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "c.1")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Submit(ctx, api.SubmitRequest{Body: other})
	e := apiErr(t, err, api.KindConflict, api.CodeIDConflict, "id")
	if !strings.Contains(e.Message, "state queued") {
		t.Errorf("conflict: %q", e.Message)
	}
	if n := workMsgs(t, js); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
	// Applied (its runner put the view): the same body is a duplicate,
	// another a conflict naming the state.
	putView(t, js, api.PatchView{ID: "c.1", Workspace: "web", State: api.StateApplied, Role: "test"})
	if r, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "c.1")}); err != nil || !r.Duplicate || r.State != api.StateApplied {
		t.Fatalf("resend of the applied patch = %+v, %v", r, err)
	}
	_, err = s.Submit(ctx, api.SubmitRequest{Body: other})
	if e := apiErr(t, err, api.KindConflict, api.CodeIDConflict, "id"); !strings.Contains(e.Message, "state applied") {
		t.Errorf("conflict: %q", e.Message)
	}
	// Failed: another body is a new attempt, queued; then that body is
	// the one a resend is compared with.
	putView(t, js, api.PatchView{ID: "c.1", Workspace: "web", State: api.StateFailed, Role: "test"})
	if r, err := s.Submit(ctx, api.SubmitRequest{Body: other}); err != nil || r.Duplicate || r.State != api.StateQueued || r.Attempt != 2 {
		t.Fatalf("new attempt = %+v, %v", r, err)
	}
	if n := workMsgs(t, js); n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}
	_, err = s.Submit(ctx, api.SubmitRequest{Body: block("web", "c.1")})
	apiErr(t, err, api.KindConflict, api.CodeIDConflict, "id")
	// The body's record is not a patch: the listing passes over it.
	l, err := s.List(ctx, api.ListOptions{})
	if err != nil || len(l.Patches) != 1 || l.Patches[0].ID != "c.1" {
		t.Fatalf("List = %+v, %v", l.Patches, err)
	}
}
