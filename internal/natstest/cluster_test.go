package natstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/gateway"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/natsconf"
)

// block is a patch block for workspace ws.
func block(ws, id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"workspace":%q,"role":"test","target_file":"log.txt","patch":{"search":"a","replace":"b"}}`, id, ws)
}

// TestClusterNodeDown: a gateway over a three-node JetStream cluster
// (streams and buckets R3, the servers configured by natsconf, the
// gateway authenticated as its user) takes patches while the server that
// leads the work stream is shut down: intake goes on (a Submit may fail
// while the group elects a new leader; the sender resends, as a webhook
// client does), and every patch the gateway acknowledged is in the work
// stream afterwards, once.
func TestClusterNodeDown(t *testing.T) {
	m, err := natsconf.Generate(natsconf.Password, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	servers := Cluster(t, m, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, js, err := jetq.Connect(ctx, GatewayOptions(m, servers...))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := jetq.Ensure(ctx, js, jetq.EnsureOptions{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []string{"a", "b"} {
		if _, err := jetq.EnsureConsumer(ctx, js, ws, jetq.ConsumerOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := gateway.New(ctx, gateway.Options{JS: js, Workspaces: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}

	// The sender: patches one after the other, alternating workspaces; a
	// failed Submit is sent again (same id, same body) until it is
	// acknowledged.
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // id -> workspace
		retries int
		longest time.Duration
	)
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
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
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := svc.Submit(sctx, api.SubmitRequest{Body: block(ws, id)})
				scancel()
				if err == nil && r.State == "queued" {
					mu.Lock()
					acked[id] = ws
					longest = max(longest, time.Since(last))
					last = time.Now()
					mu.Unlock()
					break
				}
				mu.Lock()
				retries++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	waitUntil(t, 20*time.Second, "30 patches acknowledged", func() bool { return ackedN() >= 30 })
	leader := StreamLeader(ctx, js, jetq.StreamWork, servers)
	if leader == nil {
		t.Fatal("the work stream has no leader")
	}
	before := ackedN()
	t0 := time.Now()
	leader.Shutdown()
	waitUntil(t, 30*time.Second, "30 more patches acknowledged with a node down", func() bool { return ackedN() >= before+30 })
	close(stop)
	<-done
	mu.Lock()
	t.Logf("%d patches acknowledged, %d before the leader %s was shut down; %d resends; longest gap between acknowledgements %s; 30 more in %s",
		len(acked), before, leader.Name(), retries, longest.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	mu.Unlock()

	// Every acknowledged patch is in the work stream, once, on its
	// workspace's subject; read through a surviving server.
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
