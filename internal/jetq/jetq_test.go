package jetq_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

func TestCheckWorkspace(t *testing.T) {
	for _, ok := range []string{"a", "Web_app-2", "x123456789012345678901234567890123456789012345678901234567890123"[:64]} {
		if err := jetq.CheckWorkspace(ok); err != nil {
			t.Errorf("CheckWorkspace(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a*", ">", "a b", "é", "../x", string(make([]byte, 65))} {
		err := jetq.CheckWorkspace(bad)
		e, ok := errors.AsType[*api.Error](err)
		if !ok || e.Field != "workspace" || e.Kind != api.KindInvalid {
			t.Errorf("CheckWorkspace(%q) = %#v, want an invalid *api.Error naming workspace", bad, err)
		}
	}
}

func TestPatchKey(t *testing.T) {
	for _, id := range []string{"a", "fix.1", "a:b:c", "x_y-z", "...:..", "A=B"} {
		key := jetq.PatchKey("ws-1", id)
		ws, got, err := jetq.ParsePatchKey(key)
		if err != nil || ws != "ws-1" || got != id {
			t.Errorf("ParsePatchKey(PatchKey(ws-1, %q) = %q) = %q, %q, %v", id, key, ws, got, err)
		}
	}
	if k := jetq.PatchKey("w", "a.b:c"); k != "w.a=2Eb=3Ac" {
		t.Errorf("PatchKey = %q", k)
	}
	for _, bad := range []string{"", "w", "w.", "w.a.b", "bad ws.a", ".a"} {
		if _, _, err := jetq.ParsePatchKey(bad); err == nil {
			t.Errorf("ParsePatchKey(%q) accepted", bad)
		}
	}
}

func TestWorkMsgRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	body := []byte(`{"id":"p.1","role":"r","target_file":"a","patch":{"search":"x","replace":"y"}}`)
	m := jetq.NewWorkMsg(jetq.Work{Workspace: "web", ID: "p.1", Received: now, Body: body})
	if m.Subject != "patchd.ws.web" {
		t.Errorf("subject %q", m.Subject)
	}
	if got := m.Header.Get(jetq.HeaderMsgID); got != jetq.MsgID("web", "p.1", body) || got == jetq.MsgID("api", "p.1", body) || got == jetq.MsgID("web", "p.1", []byte("{}")) {
		t.Errorf("msg id %q: not per workspace, id and body", got)
	}
	w, err := jetq.ReadWork(m.Subject, m.Header, m.Data)
	if err != nil || w.Workspace != "web" || w.ID != "p.1" || !w.Received.Equal(now) || string(w.Body) != string(body) {
		t.Fatalf("ReadWork = %+v, %v", w, err)
	}
	// Hostile envelopes are refused, not trusted.
	m.Header.Set(jetq.HeaderWorkspace, "other")
	if _, err := jetq.ReadWork(m.Subject, m.Header, m.Data); err == nil {
		t.Error("a workspace header disagreeing with the subject was accepted")
	}
	m.Header.Set(jetq.HeaderWorkspace, "a.b")
	if _, err := jetq.ReadWork("patchd.ws.a.b", m.Header, m.Data); err == nil {
		t.Error("an invalid workspace header was accepted")
	}
	m.Header.Set(jetq.HeaderWorkspace, "web")
	m.Header.Set(jetq.HeaderReceived, "yesterday")
	if _, err := jetq.ReadWork(m.Subject, m.Header, m.Data); err == nil {
		t.Error("a bad received header was accepted")
	}
	m.Header.Del(jetq.HeaderReceived)
	m.Header.Del(jetq.HeaderID)
	if _, err := jetq.ReadWork(m.Subject, m.Header, m.Data); err == nil {
		t.Error("a message without an id was accepted")
	}
}

func TestCtlReply(t *testing.T) {
	var v api.PatchView
	if err := jetq.DecodeReply(jetq.EncodeReply(api.PatchView{ID: "x", State: "applied"}, nil), &v); err != nil || v.ID != "x" {
		t.Fatalf("DecodeReply = %+v, %v", v, err)
	}
	err := jetq.DecodeReply(jetq.EncodeReply(nil, api.Errorf(api.KindConflict, api.CodeNotApplied, "id", "patch x is queued")), &v)
	e, ok := errors.AsType[*api.Error](err)
	if !ok || e.Kind != api.KindConflict || e.Code != api.CodeNotApplied || e.Field != "id" || e.Message != "patch x is queued" {
		t.Fatalf("refusal came back as %#v", err)
	}
	for _, bad := range []string{"", "{}", `{"result":[1]}`, "nope"} {
		if err := jetq.DecodeReply([]byte(bad), &v); err == nil {
			t.Errorf("DecodeReply(%q) accepted", bad)
		}
	}
}

func TestEncodeViewFits(t *testing.T) {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
		if i%80 == 79 {
			big[i] = '\n'
		}
	}
	b, err := jetq.EncodeView(api.PatchView{ID: "x", Workspace: "w", Diff: string(big)})
	if err != nil || len(b) > jetq.MaxViewBytes {
		t.Fatalf("EncodeView: %d bytes, %v", len(b), err)
	}
	v, err := jetq.DecodeView(b)
	if err != nil || v.Workspace != "w" || v.DiffNext == 0 {
		t.Fatalf("DecodeView = %+v, %v", v.DiffNext, err)
	}
}

// TestEnsure: the streams and buckets exist with the spec's settings
// after Ensure, which several callers may run at once and again.
func TestEnsure(t *testing.T) {
	s := jetqtest.Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			nc, js, err := jetq.Connect(ctx, jetq.Options{URL: s.ClientURL(), Name: "ensure"})
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			errs <- jetq.Ensure(ctx, js, jetq.EnsureOptions{DedupWindow: time.Minute})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure: %v", err)
		}
	}
	_, js := jetqtest.Connect(t, s) // Ensure again, with the defaults
	info := func(name string) *jetstream.StreamInfo {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		return st.CachedInfo()
	}
	w := info(jetq.StreamWork)
	if w.Config.Retention != jetstream.WorkQueuePolicy || w.Config.Duplicates != jetq.DefaultDedupWindow || w.Config.Storage != jetstream.FileStorage {
		t.Errorf("work stream config %+v", w.Config)
	}
	if e := info(jetq.StreamEvents); e.Config.MaxAge != jetq.EventsMaxAge || e.Config.Retention != jetstream.LimitsPolicy {
		t.Errorf("events stream config %+v", e.Config)
	}
	info(jetq.StreamDead)
	info(jetq.StreamAdvisories)
	for _, b := range []string{jetq.BucketPatches, jetq.BucketWorkspaces} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
	c, err := jetq.EnsureConsumer(ctx, js, "web", jetq.ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jetq.EnsureConsumer(ctx, js, "web", jetq.ConsumerOptions{}); err != nil {
		t.Fatalf("EnsureConsumer again: %v", err)
	}
	ci := c.CachedInfo()
	if ci.Name != "run-web" || ci.Config.FilterSubject != "patchd.ws.web" || ci.Config.MaxAckPending != 1 || ci.Config.MaxDeliver != jetq.DefaultMaxDeliver || ci.Config.AckWait != jetq.DefaultAckWait || ci.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer %+v", ci.Config)
	}
	if ci.Config.PriorityPolicy != jetstream.PriorityPolicyPinned || len(ci.Config.PriorityGroups) != 1 || ci.Config.PriorityGroups[0] != jetq.PriorityGroup || ci.Config.PinnedTTL != jetq.DefaultAckWait {
		t.Errorf("consumer %+v: want pinned to one runner of group %s for AckWait", ci.Config, jetq.PriorityGroup)
	}
	if _, err := jetq.EnsureConsumer(ctx, js, "a.b", jetq.ConsumerOptions{}); err == nil {
		t.Error("a consumer for an invalid workspace was made")
	}

	// A consumer made before runners were pinned (no priority group) is
	// updated in place, its pending messages kept.
	old := jetq.ConsumerConfig("old", jetq.ConsumerOptions{})
	old.PriorityPolicy, old.PriorityGroups, old.PinnedTTL = jetstream.PriorityPolicyNone, nil, 0
	if _, err := js.CreateOrUpdateConsumer(ctx, jetq.StreamWork, old); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, jetq.NewWorkMsg(jetq.Work{Workspace: "old", ID: "p", Received: time.Now(), Body: []byte(`{"id":"p"}`)})); err != nil {
		t.Fatal(err)
	}
	c, err = jetq.EnsureConsumer(ctx, js, "old", jetq.ConsumerOptions{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatalf("EnsureConsumer over a consumer without a priority group: %v", err)
	}
	if ci := c.CachedInfo(); ci.Config.PriorityPolicy != jetstream.PriorityPolicyPinned || ci.Config.PinnedTTL != 5*time.Second {
		t.Errorf("updated consumer %+v; want pinned for 5 s", ci.Config)
	}
	// The server counts a consumer's pending messages after it answers
	// the update (under load the first answer said 0): the message is
	// kept if the count reaches 1.
	pending := uint64(0)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		if pending = ci.NumPending; pending == 1 {
			break
		}
	}
	if pending != 1 {
		t.Errorf("updated consumer has %d pending, want the 1 published before the update", pending)
	}
}

// TestDedupAndAdvisory: a work message resent is a duplicate; one
// delivered MaxDeliver times without an ack leaves an advisory in
// PATCHD_ADVISORIES.
func TestDedupAndAdvisory(t *testing.T) {
	s := jetqtest.Server(t)
	_, js := jetqtest.Connect(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := jetq.Work{Workspace: "web", ID: "p1", Received: time.Now(), Body: []byte(`{"id":"p1"}`)}
	a1, err := js.PublishMsg(ctx, jetq.NewWorkMsg(w))
	if err != nil || a1.Duplicate {
		t.Fatalf("first publish: %+v, %v", a1, err)
	}
	a2, err := js.PublishMsg(ctx, jetq.NewWorkMsg(w))
	if err != nil || !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Fatalf("resend: %+v, %v; want a duplicate of %d", a2, err, a1.Sequence)
	}
	c, err := jetq.EnsureConsumer(ctx, js, "web", jetq.ConsumerOptions{MaxDeliver: 2, AckWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := c.Next(jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(jetq.PriorityGroup))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if got, err := jetq.ReadWork(m.Subject(), m.Headers(), m.Data()); err != nil || got.ID != "p1" {
			t.Fatalf("ReadWork = %+v, %v", got, err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	adv, err := js.Stream(ctx, jetq.StreamAdvisories)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := adv.GetLastMsgForSubject(ctx, jetq.AdvisorySubject("web")); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no max-deliveries advisory captured")
		}
		// The server finds the message over its deliveries when it
		// looks for the next one to deliver.
		if m, err := c.Next(jetstream.FetchMaxWait(100*time.Millisecond), jetstream.FetchPriorityGroup(jetq.PriorityGroup)); err == nil {
			t.Fatalf("delivered a third time: %s", m.Subject())
		}
	}
}
