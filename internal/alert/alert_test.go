package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/alert"
	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// svcStack is a real service: store, workspace and a running worker.
type svcStack struct {
	svc   *patchsvc.Service
	ws    string
	state string
}

func newSvc(t *testing.T) *svcStack {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "queue"), store.Options{EventsPath: filepath.Join(dir, "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	wsDir := filepath.Join(dir, "ws")
	os.MkdirAll(wsDir, 0o755)
	for i := range 8 {
		os.WriteFile(filepath.Join(wsDir, fmt.Sprintf("f%d.txt", i)), []byte("seed\n"), 0o644)
	}
	ws, err := workspace.Open(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(worker.Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(dir, "summaries")})
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
	return &svcStack{svc: svc, ws: wsDir, state: filepath.Join(dir, "notify")}
}

// submit sends a patch of file that applies (ok) or fails, and waits for
// its outcome.
func (s *svcStack) submit(t *testing.T, id, file, description string, ok bool) {
	t.Helper()
	pattern := "seed\n"
	if !ok {
		pattern = "not there\n"
	}
	body, _ := json.Marshal(map[string]any{"id": id, "role": "ci_patch", "target_file": file, "description": description,
		"patch": map[string]any{"pattern": pattern, "replacement": "new\n"}})
	if _, err := s.svc.Submit(context.Background(), api.SubmitRequest{Body: body}); err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if v, err := s.svc.Wait(ctx, id); err != nil || !api.Finished(v.State) {
		t.Fatalf("wait %s: %v %v", id, v.State, err)
	}
}

// receiver is a local webhook that records what it is sent; while down
// it answers 503.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []delivery
	down  bool
	tries int
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if r.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		r.got = append(r.got, delivery{req.Header.Clone(), body})
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func notifyOf(t *testing.T, s string) config.Notify {
	t.Helper()
	n, err := config.ParseNotify(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func open(t *testing.T, s *svcStack, rcv ...config.Notify) *alert.Outbox {
	t.Helper()
	o, err := alert.New(alert.Options{Dir: s.state, Service: s.svc, Receivers: rcv, FirstRetry: 10 * time.Millisecond, MaxRetry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o.Start()
	t.Cleanup(func() { o.Close() })
	return o
}

// TestSlackAndSignedGeneric: a Slack receiver (failed only, the default)
// gets one Slack-shaped message for the failed patch, none for the applied
// one, with the hostile description made inert; a generic receiver that
// asked for all gets both, signed so that the signature verifies.
func TestSlackAndSignedGeneric(t *testing.T) {
	s := newSvc(t)
	sl, gen := newReceiver(t), newReceiver(t)
	o := open(t, s, notifyOf(t, sl.URL+"/services/T0/B0/s3cretpath#kind=slack"), notifyOf(t, gen.URL+"/hook#events=all&secret=k3y"))
	s.submit(t, "good", "f0.txt", "a fine patch", true)
	hostile := "<!channel> pwned <https://evil.example|click here> & @here <@U123>"
	s.submit(t, "bad", "f1.txt", hostile, false)
	waitFor(t, "2 generic messages", func() bool { return len(gen.deliveries()) == 2 })
	waitFor(t, "1 slack message", func() bool { return len(sl.deliveries()) == 1 })

	d := sl.deliveries()[0]
	var msg struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color  string `json:"color"`
			Blocks []struct {
				Type string `json:"type"`
				Text struct {
					Text string `json:"text"`
				} `json:"text"`
			} `json:"blocks"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(d.body, &msg); err != nil {
		t.Fatalf("slack body %s: %v", d.body, err)
	}
	if len(msg.Attachments) != 1 || msg.Attachments[0].Color != "danger" || len(msg.Attachments[0].Blocks) < 3 {
		t.Fatalf("slack message %s: want one danger attachment with blocks", d.body)
	}
	all := msg.Text
	for _, b := range msg.Attachments[0].Blocks {
		all += "\n" + b.Text.Text
	}
	for _, want := range []string{"Patch failed", "`bad`", "f1.txt", "match_not_found"} {
		if !strings.Contains(all, want) {
			t.Errorf("slack message %q lacks %q", all, want)
		}
	}
	if strings.ContainsAny(all, "<>") || strings.Contains(all, "@here") {
		t.Errorf("slack message %q carries a control sequence or mention: the description was not escaped", all)
	}
	if !strings.Contains(all, "&lt;!channel&gt;") {
		t.Errorf("slack message %q: want the description escaped (&lt;!channel&gt;)", all)
	}

	var seen []string
	for _, d := range gen.deliveries() {
		ts, err := strconv.ParseInt(d.header.Get(alert.TimestampHeader), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)) > time.Minute {
			t.Errorf("timestamp %q", d.header.Get(alert.TimestampHeader))
		}
		if got, want := d.header.Get("X-Patchd-Signature"), alert.Sign("k3y", ts, d.body); got != want || !strings.HasPrefix(got, "sha256=") {
			t.Errorf("signature %q, want %q", got, want)
		}
		var g alert.Generic
		if err := json.Unmarshal(d.body, &g); err != nil {
			t.Fatal(err)
		}
		if g.EventID == 0 || g.Time.IsZero() || d.header.Get(alert.EventHeader) != g.Event {
			t.Errorf("generic message %s", d.body)
		}
		seen = append(seen, g.ID+":"+g.State)
		if g.ID == "bad" && (g.Code != "match_not_found" || g.Error == "" || g.Description != hostile) {
			t.Errorf("failed message %s", d.body)
		}
	}
	if strings.Join(seen, ",") != "good:applied,bad:failed" {
		t.Errorf("generic messages %v", seen)
	}
	waitFor(t, "nothing pending", func() bool { st := o.Status(); return st[0].Pending+st[1].Pending == 0 })
	st := o.Status()
	if len(st) != 2 || st[0].Delivered != 1 || st[1].Delivered != 2 || st[0].Pending+st[1].Pending != 0 {
		t.Errorf("status %+v", st)
	}
	for _, r := range st {
		if strings.Contains(r.Receiver, "s3cretpath") || strings.Contains(r.Receiver, "/hook") {
			t.Errorf("status names the URL: %q", r.Receiver)
		}
	}
}

// TestReceiverDownThenUp: a receiver that answers 503 for a while gets
// the message once it is back, exactly once; the failures are counted,
// with the last error, and no URL in it.
func TestReceiverDownThenUp(t *testing.T) {
	s := newSvc(t)
	r := newReceiver(t)
	r.setDown(true)
	o := open(t, s, notifyOf(t, r.URL+"/s3cretpath"))
	s.submit(t, "bad", "f1.txt", "x", false)
	waitFor(t, "3 failed attempts", func() bool { return r.attempts() >= 3 })
	st := o.Status()[0]
	if st.Pending != 1 || st.Failed < 2 || !strings.Contains(st.LastError, "503") || strings.Contains(st.LastError, "s3cret") {
		t.Errorf("status while down: %+v", st)
	}
	r.setDown(false)
	waitFor(t, "the delivery", func() bool { return len(r.deliveries()) == 1 })
	waitFor(t, "nothing pending", func() bool { return o.Status()[0].Pending == 0 })
	time.Sleep(200 * time.Millisecond)
	if n := len(r.deliveries()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
	if st := o.Status()[0]; st.Delivered != 1 || st.LastSuccessAt.IsZero() {
		t.Errorf("status after: %+v", st)
	}
}

// TestOutboxSurvivesReopen: messages pending when the outbox closes are
// delivered by the next one, once; events it enqueued are not enqueued
// again, and those that came while it was closed are.
func TestOutboxSurvivesReopen(t *testing.T) {
	s := newSvc(t)
	r := newReceiver(t)
	r.setDown(true)
	n := notifyOf(t, r.URL+"/x")
	o := open(t, s, n)
	s.submit(t, "bad1", "f1.txt", "x", false)
	waitFor(t, "an attempt", func() bool { return r.attempts() >= 1 })
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	s.submit(t, "bad2", "f2.txt", "x", false)
	r.setDown(false)
	o2 := open(t, s, n)
	waitFor(t, "two deliveries", func() bool { return len(r.deliveries()) == 2 })
	waitFor(t, "nothing pending", func() bool { return o2.Status()[0].Pending == 0 })
	o2.Close()
	o3 := open(t, s, n)
	s.submit(t, "bad3", "f3.txt", "x", false)
	waitFor(t, "three deliveries", func() bool { return len(r.deliveries()) >= 3 })
	time.Sleep(200 * time.Millisecond)
	var ids []string
	for _, d := range r.deliveries() {
		var g alert.Generic
		json.Unmarshal(d.body, &g)
		ids = append(ids, g.ID)
	}
	if strings.Join(ids, ",") != "bad1,bad2,bad3" {
		t.Errorf("delivered %v, want bad1,bad2,bad3 once each", ids)
	}
	_ = o3
}

// TestOutboxBounded: while a receiver is down, its outbox keeps the newest
// MaxPending messages and counts those it dropped.
func TestOutboxBounded(t *testing.T) {
	s := newSvc(t)
	r := newReceiver(t)
	r.setDown(true)
	o, err := alert.New(alert.Options{Dir: s.state, Service: s.svc, Receivers: []config.Notify{notifyOf(t, r.URL+"/x")},
		MaxPending: 2, FirstRetry: time.Hour, MaxRetry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	o.Start()
	defer o.Close()
	for i := range 5 {
		s.submit(t, fmt.Sprintf("bad%d", i), fmt.Sprintf("f%d.txt", i), "x", false)
	}
	waitFor(t, "3 dropped", func() bool { st := o.Status()[0]; return st.Dropped == 3 && st.Pending == 2 })
}

// TestNoRedirectElsewhere: a receiver that redirects to another host is
// not followed there.
func TestNoRedirectElsewhere(t *testing.T) {
	s := newSvc(t)
	other := newReceiver(t)
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	o := open(t, s, notifyOf(t, redir.URL+"/x"))
	s.submit(t, "bad", "f1.txt", "x", false)
	waitFor(t, "a failed attempt", func() bool { return o.Status()[0].Failed > 0 })
	if other.attempts() != 0 {
		t.Errorf("the redirect was followed to another host")
	}
	if e := o.Status()[0].LastError; !strings.Contains(e, "another host") {
		t.Errorf("last error %q", e)
	}
}

// TestOutboxTornEnd: an outbox whose last line a crash tore (half a
// record, no newline) opens, cuts the torn end, and still delivers what
// was pending before it.
func TestOutboxTornEnd(t *testing.T) {
	s := newSvc(t)
	r := newReceiver(t)
	r.setDown(true)
	n := notifyOf(t, r.URL+"/x")
	o := open(t, s, n)
	s.submit(t, "bad1", "f1.txt", "x", false)
	waitFor(t, "an attempt", func() bool { return r.attempts() >= 1 })
	o.Close()
	path := filepath.Join(s.state, "outbox.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"add","event_id":999,"msgs":[{"key":"999/x`)
	f.Close()
	r.setDown(false)
	o2 := open(t, s, n)
	waitFor(t, "the delivery", func() bool { return len(r.deliveries()) == 1 })
	waitFor(t, "nothing pending", func() bool { return o2.Status()[0].Pending == 0 })
	o2.Close()
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"event_id":999`) {
		t.Errorf("the torn line is still in the outbox:\n%s", data)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("outbox mode %v, want 0600", info.Mode().Perm())
	}
}
