package natstest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/gatewayd"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// block is a patch block (posted under /ws/<name>/, it names no
// workspace).
func block(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"role":"test","target_file":"log.txt","patch":{"search":"a","replace":"b"}}`, id)
}

// TestClusterNodeDown: `patchd gateway`'s wiring (gatewayd.Run, in
// process, serving HTTP) over a three-node JetStream cluster (streams and
// buckets R3, the servers configured by natsconf, the gateway
// authenticated as its user) takes patches over POST /ws/<ws>/webhook
// while the server that leads the work stream is shut down: intake goes
// on (a 503 while the group elects a new leader makes the sender send the
// same patch again, as a webhook client does; the resend may find it
// queued after all: a duplicate), and
// every patch the gateway acknowledged is in the work stream afterwards,
// once, on its workspace's subject.
func TestClusterNodeDown(t *testing.T) {
	m, err := natsconf.Generate(natsconf.Password, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	servers := Cluster(t, m, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := &config.Config{StateDir: t.TempDir(), Host: "127.0.0.1", Port: port, MaxBodyBytes: 1 << 20,
		DrainTimeout: 5 * time.Second, HealthDetail: "token", LogLevel: "error"}
	gctx, gcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- gatewayd.Run(gctx, gatewayd.Options{Config: cfg, NATS: GatewayOptions(m, servers...),
			Workspaces: []string{"a", "b"}, Replicas: 3}, io.Discard)
	}()
	defer func() {
		gcancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUntil(t, 30*time.Second, "the gateway's /health", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	tok, err := os.ReadFile(cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	var (
		mu          sync.Mutex
		lastRefusal string
	)
	post := func(ws, id string) bool {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/ws/"+ws+"/webhook", bytes.NewReader(block(id)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// 202 queued, or 200 a duplicate: a resend of a patch queued
		// although its first answer was a 503.
		ok := resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"duplicate":true`)
		if !ok {
			mu.Lock()
			lastRefusal = fmt.Sprintf("%d %s", resp.StatusCode, b)
			mu.Unlock()
		}
		return ok
	}

	// The sender: patches one after the other, alternating workspaces;
	// one not acknowledged is sent again (same id, same body) until it is.
	var (
		acked   = map[string]string{} // id -> workspace
		resends int
		longest time.Duration
	)
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		last := time.Now()
		for i := 0; ; i++ {
			ws := []string{"a", "b"}[i%2]
			id := fmt.Sprintf("p-%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if post(ws, id) {
					mu.Lock()
					acked[id] = ws
					longest = max(longest, time.Since(last))
					last = time.Now()
					mu.Unlock()
					break
				}
				mu.Lock()
				resends++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	waitUntil(t, 30*time.Second, "30 patches acknowledged", func() bool { return ackedN() >= 30 })
	nc, js, err := jetq.Connect(ctx, GatewayOptions(m, servers...))
	if err != nil {
		t.Fatal(err)
	}
	leader := StreamLeader(ctx, js, jetq.StreamWork, servers)
	nc.Close()
	if leader == nil {
		t.Fatal("the work stream has no leader")
	}
	before := ackedN()
	t0 := time.Now()
	leader.Shutdown()
	waitUntil(t, 30*time.Second, "30 more patches acknowledged with a node down", func() bool {
		if ackedN() >= before+30 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		if lastRefusal != "" {
			t.Logf("refused: %s", lastRefusal)
			lastRefusal = ""
		}
		return false
	})
	close(stop)
	<-sent
	mu.Lock()
	t.Logf("%d patches acknowledged, %d before the leader %s was shut down; %d resends; longest gap between acknowledgements %s; 30 more in %s",
		len(acked), before, leader.Name(), resends, longest.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	mu.Unlock()

	// Every acknowledged patch is in the work stream, once, on its
	// workspace's subject; read through the surviving servers.
	var alive []*server.Server
	for _, s := range servers {
		if s != leader {
			alive = append(alive, s)
		}
	}
	nc2, js2, err := jetq.Connect(ctx, GatewayOptions(m, alive...))
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	st, err := js2.Stream(ctx, jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Config.Replicas != 3 {
		t.Errorf("work stream replicas %d, want 3", info.Config.Replicas)
	}
	seen := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		id := raw.Header.Get(jetq.HeaderID)
		seen[id]++
		if ws, ok := acked[id]; ok && raw.Subject != jetq.WorkSubject(ws) {
			t.Errorf("%s on %s, want %s", id, raw.Subject, jetq.WorkSubject(ws))
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged patch %s is in the work stream %d times, want once", id, seen[id])
		}
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
