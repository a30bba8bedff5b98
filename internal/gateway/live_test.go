package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

// TestStatusCountsTheQueue: with no runner connected, the patches queued
// at the gateway are counted queued, per workspace and in all; the one a
// runner says it applies is counted once, as applying.
func TestStatusCountsTheQueue(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web", "api")
	ctx := ctxT(t)
	for _, b := range [][]byte{block("web", "q1"), block("web", "q2"), block("api", "q1")} {
		if _, err := s.Submit(ctx, api.SubmitRequest{Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, st api.Status, err error, queued, applying, applied, total int) {
		t.Helper()
		q := st.Queue
		if err != nil || q.Queued != queued || q.Applying != applying || q.Applied != applied || q.Total != total {
			t.Fatalf("%s: Status queue = %+v, %v; want queued %d applying %d applied %d total %d", name, q, err, queued, applying, applied, total)
		}
	}
	st, err := s.Status(ctx)
	check("all", st, err, 3, 0, 0, 3)
	web, _ := s.Bind("web")
	st, err = web.Status(ctx)
	check("web", st, err, 2, 0, 0, 2)
	apiWS, _ := s.Bind("api")
	st, err = apiWS.Status(ctx)
	check("api", st, err, 1, 0, 0, 1)

	// web's runner applies q1 (still in the queue until acknowledged) and
	// applied 4 before.
	rec := jetq.WorkspaceRecord{Name: "web", UpdatedAt: time.Now().UTC(),
		Status: api.Status{Queue: api.QueueStats{Applying: 1, Applied: 4, Total: 5}}}
	b, _ := json.Marshal(rec)
	kv, err := js.KeyValue(ctx, jetq.BucketWorkspaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "web", b); err != nil {
		t.Fatal(err)
	}
	st, err = web.Status(ctx)
	check("web with its runner", st, err, 1, 1, 4, 6)
	st, err = s.Status(ctx)
	check("all with web's runner", st, err, 2, 1, 4, 7)
}

// TestSubmitPublishesItsEvent: a patch queued at the gateway is seen at
// once by a subscriber, as a patch.submitted event, once even when the
// block is resent.
func TestSubmitPublishesItsEvent(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	s := newService(t, js, "web")
	ctx := ctxT(t)
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(ctx, st.LastEventID)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "live.1")}); err != nil {
			t.Fatal(err)
		}
	}
	// A marker: every event of live.1 comes before its.
	if _, err := s.Submit(ctx, api.SubmitRequest{Body: block("web", "marker")}); err != nil {
		t.Fatal(err)
	}
	var seen []api.Event
	for e := range sub.Events() {
		if e.ID == "marker" {
			break
		}
		seen = append(seen, e)
	}
	if len(seen) != 1 {
		t.Fatalf("events before the marker = %+v (err %v), want one patch.submitted of live.1", seen, sub.Err())
	}
	e := seen[0]
	if e.Event != "patch.submitted" || e.ID != "live.1" || e.State != api.StateQueued || e.Workspace != "web" || e.EventID <= st.LastEventID {
		t.Fatalf("event = %+v, want patch.submitted of live.1, queued, in web, after %d", e, st.LastEventID)
	}
}
