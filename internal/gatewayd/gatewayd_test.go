package gatewayd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/gateway"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
	"github.com/patchd/patchd/internal/natsconf"
)

func testConfig(t *testing.T) *config.Config {
	return &config.Config{StateDir: t.TempDir(), Host: "127.0.0.1", Port: 0, MaxBodyBytes: 1 << 20,
		DrainTimeout: 5 * time.Second, HealthDetail: "token", LogLevel: "error"}
}

type answer struct {
	Status string `json:"status"`
	Result struct {
		Error, Code, Field, PatchID, State string
		Duplicate                          bool
	} `json:"result"`
}

func post(t *testing.T, base, path, token, body string) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, a
}

// TestPerWorkspacePath: /ws/<name>/ serves the same API bound to the
// workspace: a patch posted there needs no "workspace" field and is
// queued on that workspace's subject; one naming another is refused;
// an unknown workspace is 404; the root API takes the field.
func TestPerWorkspacePath(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	ctx := context.Background()
	svc, err := gateway.New(ctx, gateway.Options{JS: js, Workspaces: []string{"web", "api"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newHTTP(testConfig(t), svc, "tok", ln, slog.New(slog.DiscardHandler))
	go g.http.Serve(ln)
	t.Cleanup(func() { g.down(time.Second, slog.New(slog.DiscardHandler)) })
	base := "http://" + ln.Addr().String()
	blk := func(id, ws string) string {
		b := `{"id":"` + id + `","role":"r","target_file":"a.txt","patch":{"search":"a","replace":"b"}`
		if ws != "" {
			b += `,"workspace":"` + ws + `"`
		}
		return b + "}"
	}
	if code, a := post(t, base, "/ws/web/webhook", "tok", blk("p1", "")); code != 202 || a.Result.State != "queued" {
		t.Fatalf("POST /ws/web/webhook: %d %+v", code, a)
	}
	if code, a := post(t, base, "/ws/web/webhook", "tok", blk("p1", "")); code != 200 || !a.Result.Duplicate {
		t.Fatalf("resend: %d %+v", code, a)
	}
	if code, a := post(t, base, "/webhook", "tok", blk("p2", "api")); code != 202 {
		t.Fatalf("POST /webhook: %d %+v", code, a)
	}
	if code, a := post(t, base, "/ws/web/webhook", "tok", blk("p3", "api")); code != 400 || a.Result.Field != "workspace" {
		t.Fatalf("disagreeing workspace: %d %+v", code, a)
	}
	if code, a := post(t, base, "/ws/mobile/webhook", "tok", blk("p4", "")); code != 404 || a.Result.Code != gateway.CodeWorkspaceUnknown || !strings.Contains(a.Result.Error, "api, web") {
		t.Fatalf("unknown workspace: %d %+v", code, a)
	}
	if code, _ := post(t, base, "/ws/web/webhook", "wrong", blk("p5", "")); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := post(t, base, "/webhook", "tok", blk("p6", "")); code != 400 {
		t.Fatalf("no workspace at the root: %d", code)
	}
	st, _ := js.Stream(ctx, jetq.StreamWork)
	for _, c := range []struct{ ws, id string }{{"web", "p1"}, {"api", "p2"}} {
		m, err := st.GetLastMsgForSubject(ctx, jetq.WorkSubject(c.ws))
		if err != nil || m.Header.Get(jetq.HeaderID) != c.id {
			t.Fatalf("work of %s: %+v, %v", c.ws, m, err)
		}
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 2 {
		t.Fatalf("%d work messages, want 2", info.State.Msgs)
	}
	// A workspace's OpenAPI document sends its client to the workspace's
	// routes; the root's to the root.
	for path, want := range map[string]string{"/ws/web/openapi.json": base + "/ws/web", "/openapi.json": base} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Servers    []struct{ URL string }
			Components struct {
				Schemas struct {
					PatchBlock struct{ Properties map[string]any }
				}
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(doc.Servers) != 1 || doc.Servers[0].URL != want {
			t.Fatalf("GET %s: %d servers %+v, %v; want %s", path, resp.StatusCode, doc.Servers, err, want)
		}
		// A client built from it may name the workspace in the block.
		if doc.Components.Schemas.PatchBlock.Properties["workspace"] == nil {
			t.Errorf("GET %s: PatchBlock has no workspace property", path)
		}
	}
	req, _ := http.NewRequest("GET", base+"/ws/web/patches/p1", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"workspace":"web"`)) {
		t.Fatalf("GET /ws/web/patches/p1: %d %s", resp.StatusCode, b)
	}
}

// TestEmbeddedRun: Run with the embedded server serves until ctx ends;
// its runner users are generated 0600 under the state dir; a second
// gateway on the same state dir is refused.
func TestEmbeddedRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.Port, _ = strconv.Atoi(freePort(t))
	cfg.FallbackPorts = nil
	port := freePort(t)
	o := Options{Config: cfg, Workspaces: []string{"web"},
		Embedded: Embedded{On: true, Listen: net.JoinHostPort("127.0.0.1", port), BcryptCost: 4}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, io.Discard) }()
	// A runner connects over TCP with its generated password.
	dir := natsconf.CredentialsDir(cfg.StateDir)
	var link *jetq.Link
	deadline := time.Now().Add(45 * time.Second)
	for {
		// Written last by the gateway: the others are there.
		_, err := os.Stat(filepath.Join(dir, "route.password"))
		var m *natsconf.Model
		if err == nil {
			m, err = natsconf.LoadOrGenerate(dir, natsconf.Password, []string{"web"})
		}
		if err == nil {
			r := m.Runner("web")
			if r == nil {
				t.Fatal("no runner user for web")
			}
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			link, err = jetq.Dial(cctx, jetq.Options{URL: "nats://127.0.0.1:" + port, User: r.Name, Password: r.Password, InboxPrefix: jetq.RunnerInbox("web")})
			ccancel()
			if err == nil {
				if _, err = link.JS.Stream(ctx, jetq.StreamWork); err == nil {
					break
				}
				link.Close()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the embedded server did not take the runner: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The runner's events time the applies in /metrics (from the events
	// after the gateway began following them: a pair is sent until one
	// is counted).
	tok, err := os.ReadFile(cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	counted := regexp.MustCompile(`patchd_patch_apply_duration_seconds_count\{state="applied"\} [1-9]`)
	for i, metrics := 0, ""; !counted.MatchString(metrics); i++ {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("/metrics never counted an applied patch:\n%s", metrics)
		}
		now := time.Now()
		for _, ev := range []api.Event{
			{Event: "patch.applying", ID: fmt.Sprint("m", i), State: api.StateApplying, Time: now},
			{Event: "patch.applied", ID: fmt.Sprint("m", i), State: api.StateApplied, Time: now.Add(250 * time.Millisecond)},
		} {
			b, _ := json.Marshal(ev)
			if _, err := link.JS.Publish(ctx, jetq.EventsSubject("web"), b); err != nil {
				t.Fatal(err)
			}
		}
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+fmt.Sprint(cfg.Port)+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
		}
	}
	link.Close()
	// The gateway consumes every workspace's max-deliveries advisories
	// (its dead letters; no runner may).
	m, err := natsconf.LoadOrGenerate(dir, natsconf.Password, []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	gl, err := jetq.Dial(ctx, jetq.Options{URL: "nats://127.0.0.1:" + port, User: m.Gateway.Name, Password: m.Gateway.Password})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := gl.JS.Consumer(ctx, jetq.StreamAdvisories, jetq.DeadConsumer); err != nil; _, err = gl.JS.Consumer(ctx, jetq.StreamAdvisories, jetq.DeadConsumer) {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("the gateway's consumer %s: %v", jetq.DeadConsumer, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gl.Close()
	if err := Run(ctx, o, io.Discard); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second gateway: %v, want ErrAlreadyRunning", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(matches) < 2 {
		t.Fatalf("credentials: %v", matches)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestConnLimit: the gateway bounds its HTTP connections as the daemon
// does (--max-conns): one past the limit is answered 503
// too_many_connections before a request is read.
func TestConnLimit(t *testing.T) {
	_, js := jetqtest.Connect(t, jetqtest.Server(t))
	svc, err := gateway.New(context.Background(), gateway.Options{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.MaxConns = 2
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newHTTP(cfg, svc, "tok", ln, slog.New(slog.DiscardHandler))
	go g.http.Serve(g.conns.Listener(ln))
	t.Cleanup(func() { g.down(time.Second, slog.New(slog.DiscardHandler)) })
	// Two busy connections: each follows GET /events (an idle one
	// would be closed to make room).
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err != nil {
			t.Fatalf("GET /events: %v", err)
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.Contains(string(b), "503") || !strings.Contains(string(b), "too_many_connections") {
		t.Fatalf("the third connection got %q", b)
	}
}
