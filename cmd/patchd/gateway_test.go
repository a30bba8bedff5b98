package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// TestGatewayEmbeddedProcess: `patchd gateway --embedded-nats` takes a
// patch over HTTP and answers 202 once it is in the work queue: the
// message is there, on the workspace's subject, for a runner to take,
// read with the gateway's generated credentials over TCP; SIGTERM stops
// it with exit 0.
func TestGatewayEmbeddedProcess(t *testing.T) {
	e, base, natsPort, cmd, out := startGateway(t, "web")
	body := `{"id":"gw-1","role":"test","target_file":"a.txt","patch":{"search":"a","replace":"b"}}`
	req, _ := http.NewRequest("POST", base+"/ws/web/webhook", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"state":"queued"`) {
		t.Fatalf("POST /ws/web/webhook: %d %s\n%s", resp.StatusCode, b, out)
	}

	m, err := natsconf.LoadOrGenerate(natsconf.CredentialsDir(e.state), natsconf.Password, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	link, err := jetq.Dial(ctx, jetq.Options{URL: fmt.Sprintf("nats://127.0.0.1:%d", natsPort), User: m.Gateway.Name, Password: m.Gateway.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	st, err := link.JS.Stream(ctx, jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, jetq.WorkSubject("web"))
	if err != nil {
		t.Fatalf("no work message for web: %v", err)
	}
	w, err := jetq.ReadWork(msg.Subject, msg.Header, msg.Data)
	if err != nil || w.ID != "gw-1" || string(w.Body) != body {
		t.Fatalf("work message %+v, %v", w, err)
	}
	if info, _ := st.Info(ctx); info.State.Msgs != 1 {
		t.Fatalf("%d work messages, want 1", info.State.Msgs)
	}
	// The runner's secret is its own file, 0600.
	if fi, err := os.Stat(filepath.Join(natsconf.CredentialsDir(e.state), "run-web.password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("runner secret: %v %v", fi, err)
	}
	// patchd stop on a gateway's state dir stops nothing and says so,
	// instead of "patchd was not running".
	if r := e.run("stop"); r.code != 1 || !strings.Contains(r.stderr, "patchd gateway") || !strings.Contains(r.stderr, "SIGTERM") {
		t.Fatalf("patchd stop on the gateway's state dir: %v", r)
	}
	if resp, err := http.Get(base + "/health"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the gateway after patchd stop: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("gateway exit %d after SIGTERM\n%s", code, out)
	}
}

// startGateway starts `patchd gateway --embedded-nats --workspaces
// workspaces` on free ports, with its own state directory, and waits for
// its /health. It returns its env (e.token() is its token), its HTTP base
// URL, its NATS port, the process and its output; the process is killed
// at the test's end.
func startGateway(t *testing.T, workspaces string) (e *tenv, base string, natsPort int, cmd *exec.Cmd, out *syncBuffer) {
	t.Helper()
	e = newEnv(t)
	e.state = t.TempDir()
	port := freePort(t)
	natsPort = freePort(t)
	cmd = e.command("gateway", "--embedded-nats", "--workspaces", workspaces,
		"--port", fmt.Sprint(port), "--fallback-port", "none", "--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort))
	out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 30*time.Second, "the gateway's /health", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return e, base, natsPort, cmd, out
}
