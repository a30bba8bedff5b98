package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/alert"
)

// hook is a webhook receiver in the test: it records every POST.
type hook struct {
	mu  sync.Mutex
	got []hookMsg
	srv *http.Server
}

type hookMsg struct {
	header http.Header
	body   []byte
}

// serveHook receives on ln until the test ends.
func serveHook(t *testing.T, ln net.Listener) *hook {
	h := &hook{}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, hookMsg{r.Header.Clone(), body})
		h.mu.Unlock()
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hook) msgs() []hookMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookMsg(nil), h.got...)
}

// notifyStatus is what `patchd status --json` says of the receivers.
func (e *tenv) notifyStatus() []map[string]any {
	e.t.Helper()
	r := e.run("status", "--json")
	var st struct {
		Notify []map[string]any `json:"notify"`
	}
	json.Unmarshal([]byte(r.stdout), &st)
	return st.Notify
}

// TestNotifyProcess: the real daemon with, in its config file, a Slack
// receiver (a URL: failed only by default) and a generic signed one (an
// object: applied and failed) that is down. The Slack receiver gets one message,
// for the failed patch, with its hostile description made inert; the
// generic one's messages wait in the outbox through a `patchd restart` and
// a kill -9, are seen pending with their last error in `patchd status`,
// and are delivered once the receiver is up, once each, signed. No
// receiver URL appears in the log, the status or the metrics.
func TestNotifyProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 2 {
		os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("f%d.txt", i)), []byte("seed\n"), 0o644)
	}
	slackLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slack := serveHook(t, slackLn)
	// The generic receiver's port, unused until it comes up.
	genLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	genAddr := genLn.Addr().String()
	genLn.Close()

	os.MkdirAll(e.stateDir(), 0o700)
	cfg := fmt.Sprintf(`{"notify": ["http://%s/services/T0/B0/sl4ckpath#kind=slack", {"url": "http://%s/hook/g3nericpath", "events": ["applied", "failed"], "secret": "k3y"}]}`, slackLn.Addr(), genAddr)
	if err := os.WriteFile(filepath.Join(e.stateDir(), "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	hostile := "<!channel> see <https://evil.example|this> & @here"
	for i, b := range [][]byte{
		seedBlock("p0", "f0.txt"),
		[]byte(fmt.Sprintf(`{"id":"p1","role":"ci_patch","target_file":"f1.txt","description":%q,"patch":{"pattern":"absent\n","replacement":"x\n"}}`, hostile)),
	} {
		if code, body, err := cl.do("POST", "/webhook", b); err != nil || code != 202 {
			t.Fatalf("POST %d = %d %s %v", i, code, body, err)
		}
	}
	for id, want := range map[string]string{"p0": "applied", "p1": "failed"} {
		waitFor(t, 15*time.Second, id+" "+want, func() bool { p, _ := cl.patch(t, id); return p.State == want })
	}
	waitFor(t, 15*time.Second, "the Slack message", func() bool { return len(slack.msgs()) >= 1 })

	// The generic receiver is down: its two messages wait, with an error.
	pending := func(failed bool) func() bool {
		return func() bool {
			for _, n := range e.notifyStatus() {
				if n["kind"] == "generic" && n["pending"] == float64(2) && (!failed || n["last_error"] != nil) {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, 15*time.Second, "2 pending generic messages with an error", pending(true))
	if r := e.run("status"); !strings.Contains(r.stdout, "notify") || !strings.Contains(r.stdout, "pending=2") {
		t.Errorf("patchd status does not show the receivers: %s", r)
	}
	if r := e.run("restart"); r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	waitFor(t, 15*time.Second, "2 pending after the restart", pending(false))
	for _, pid := range e.pids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 10*time.Second, "no daemon", func() bool { return len(e.pids()) == 0 })
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start after kill -9: %s", r)
	}
	waitFor(t, 15*time.Second, "2 pending after kill -9, with an error", pending(true))
	st, _ = e.status()
	cl = e.client(st.Address)

	ln, err := net.Listen("tcp", genAddr)
	if err != nil {
		t.Fatalf("the generic receiver's port: %v", err)
	}
	gen := serveHook(t, ln)
	waitFor(t, 30*time.Second, "the generic messages", func() bool { return len(gen.msgs()) >= 2 })
	waitFor(t, 15*time.Second, "nothing pending", func() bool {
		ns := e.notifyStatus()
		return len(ns) == 2 && ns[0]["pending"] == float64(0) && ns[1]["pending"] == float64(0)
	})

	var got []string
	for _, m := range gen.msgs() {
		ts, _ := strconv.ParseInt(m.header.Get(alert.TimestampHeader), 10, 64)
		if sig := m.header.Get("X-Patchd-Signature"); sig != alert.Sign("k3y", ts, m.body) {
			t.Errorf("signature %q does not verify for %s", sig, m.body)
		}
		var g alert.Generic
		json.Unmarshal(m.body, &g)
		got = append(got, g.ID+":"+g.State)
	}
	if strings.Join(got, ",") != "p0:applied,p1:failed" {
		t.Errorf("generic receiver got %v, want p0:applied,p1:failed once each", got)
	}
	sm := slack.msgs()
	if len(sm) != 1 {
		t.Fatalf("Slack receiver got %d messages, want 1 (p1 failed)", len(sm))
	}
	body := string(sm[0].body)
	if !strings.Contains(body, "p1") || !strings.Contains(body, "danger") || strings.Contains(body, "p0") {
		t.Errorf("Slack message %s: want p1's failure only", body)
	}
	if strings.Contains(body, `\u003c!channel`) || strings.Contains(body, `\u003chttps`) || strings.Contains(body, "@here") {
		t.Errorf("Slack message %s: the hostile description is live", body)
	}

	log, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
	code, metrics, err := cl.do("GET", "/metrics", nil)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	status := e.run("status", "--json").stdout
	for what, text := range map[string]string{"the log": string(log), "/metrics": string(metrics), "status": status} {
		for _, secret := range []string{"sl4ckpath", "g3nericpath", "k3y"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %q", what, secret)
			}
		}
	}
	if !strings.Contains(string(log), "notify: delivery failed") {
		t.Errorf("the log does not say that deliveries failed")
	}
	if code != 200 || !strings.Contains(string(metrics), `patchd_notify_deliveries_total{receiver="http://`+genAddr) || !strings.Contains(string(metrics), "patchd_notify_pending") {
		t.Errorf("/metrics = %d, want the notify metrics:\n%s", code, metrics)
	}
}
