package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
	}
	t.Fatalf("%s: not so after 20 s: %s", what, last)
}

// msgs is how many messages stream holds.
func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// dies is a runner that takes the workspace's next message and dies
// holding it: the delivery must be the n-th of patch id.
func dies(t *testing.T, cons jetstream.Consumer, id string, n uint64) jetstream.Msg {
	t.Helper()
	var last jetstream.Msg
	eventually(t, fmt.Sprintf("delivery %d of %s", n, id), func() (bool, string) {
		m, err := cons.Next(jetstream.FetchMaxWait(300*time.Millisecond), jetstream.FetchPriorityGroup(jetq.PriorityGroup))
		if err != nil {
			return false, err.Error()
		}
		md, _ := m.Metadata()
		if md.NumDelivered != n || m.Headers().Get(jetq.HeaderID) != id {
			t.Fatalf("delivery %d of %s, want %d of %s", md.NumDelivered, m.Headers().Get(jetq.HeaderID), n, id)
		}
		last = m
		return true, ""
	})
	return last
}

// TestDeadLetters: a message whose every delivery found a runner that
// died holding it (fetched, never acknowledged) is made a dead letter by
// the gateway from the max-deliveries advisory PATCHD_ADVISORIES kept
// while no gateway ran: copied with its headers to patchd.dead.<ws>,
// removed from the work queue, its view failed with code dead_letter, its
// event published. One its runner buried already (its Term lost) is only
// removed, and an advisory handled again adds nothing: one dead letter
// and one event each. (The runner's own TestDeadLetterBackstop did this
// before; no runner may now read or remove a message by its sequence.)
func TestDeadLetters(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	ctx := ctxT(t)
	cons, err := jetq.EnsureConsumer(ctx, js, "b", jetq.ConsumerOptions{MaxDeliver: 2, AckWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t, js, "b")
	for _, id := range []string{"held", "buried"} {
		if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("b", id)}); err != nil {
			t.Fatal(err)
		}
	}
	dies(t, cons, "held", 1)
	dies(t, cons, "held", 2)
	dies(t, cons, "buried", 1)
	// "buried": its runner buried it on the last delivery (as natsrun
	// does for a refused one) and died before its Term was confirmed.
	m := dies(t, cons, "buried", 2)
	md, _ := m.Metadata()
	// Past the last delivery's AckWait the server emits each one's
	// max-deliveries advisory, and a runner pulling gets neither again.
	eventually(t, "the advisories", func() (bool, string) {
		if m, err := cons.Next(jetstream.FetchMaxWait(300*time.Millisecond), jetstream.FetchPriorityGroup(jetq.PriorityGroup)); err == nil {
			t.Fatalf("delivered again past MaxDeliver: %v", m.Headers())
		}
		n := msgs(t, js, jetq.StreamAdvisories)
		return n == 2, fmt.Sprint(n, " advisories")
	})
	dl := nats.NewMsg(jetq.DeadSubject("b"))
	dl.Data = m.Data()
	for k, vs := range m.Headers() {
		if k != "Nats-Expected-Stream" {
			dl.Header[k] = vs
		}
	}
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		t.Fatal(err)
	}
	received, _ := time.Parse(time.RFC3339Nano, m.Headers().Get(jetq.HeaderReceived))
	putView(t, js, api.PatchView{ID: "buried", Workspace: "b", State: api.StateFailed, Code: jetq.CodeDeadLetter,
		Error: "delivered 2 times without an outcome (the last refusal: no); kept on patchd.dead.b", ReceivedAt: received})
	ev, _ := json.Marshal(api.Event{Event: "patch.failed", ID: "buried", State: api.StateFailed, Code: jetq.CodeDeadLetter, Workspace: "b"})
	em := nats.NewMsg(jetq.EventsSubject("b"))
	em.Data = ev
	em.Header.Set(nats.MsgIdHdr, "b:dead:"+strconv.FormatUint(md.Sequence.Stream, 10))
	if _, err := js.PublishMsg(ctx, em); err != nil {
		t.Fatal(err)
	}
	if n := workMsgs(t, js); n != 2 {
		t.Fatalf("work queue holds %d messages, want both", n)
	}
	if n := msgs(t, js, jetq.StreamDead); n != 1 {
		t.Fatalf("%d dead letters before the gateway, want the runner's", n)
	}

	// The gateway comes.
	dctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.DeadLetters(dctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, "the dead letter from the advisory", func() (bool, string) {
		v, err := s.Get(ctx, "held")
		return err == nil && v.State == api.StateFailed && v.Code == jetq.CodeDeadLetter && v.Error == "delivered 2 times without an outcome; kept on patchd.dead.b" && workMsgs(t, js) == 0,
			fmt.Sprintf("%+v %v, %d left", v, err, workMsgs(t, js))
	})
	if v, err := s.Get(ctx, "buried"); err != nil || !strings.Contains(v.Error, "the last refusal: no") {
		t.Errorf("buried's view = %+v, %v; want the runner's", v, err)
	}
	dead, err := js.Stream(ctx, jetq.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dead.GetMsg(ctx, 2)
	if err != nil || d.Subject != jetq.DeadSubject("b") || d.Header.Get(jetq.HeaderID) != "held" || d.Header.Get(jetq.HeaderDeliveries) != "2" ||
		d.Header.Get(jetq.HeaderWorkspace) != "b" || string(d.Data) != string(block("b", "held")) {
		t.Errorf("dead letter = %+v, %v; want held's message and headers", d, err)
	}

	// The advisory of held again (a gateway that died before its ack):
	// the message is gone, nothing is added.
	adv, err := js.Stream(ctx, jetq.StreamAdvisories)
	if err != nil {
		t.Fatal(err)
	}
	a, err := adv.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, a.Subject, a.Data); err != nil {
		t.Fatal(err)
	}
	dc, err := js.Consumer(ctx, jetq.StreamAdvisories, jetq.DeadConsumer)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the advisories handled", func() (bool, string) {
		info, err := dc.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream == 3, fmt.Sprintf("%+v %v", info, err)
	})
	if n := msgs(t, js, jetq.StreamDead); n != 2 {
		t.Errorf("%d dead letters, want 2 (one each)", n)
	}
	if n := msgs(t, js, jetq.StreamEvents); n != 4 {
		t.Errorf("%d events, want 4 (the two submissions', and one dead letter's each)", n)
	}
}
