//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/jetq/jetqtest"
)

// TestRunnerProcess: the real binary as a NATS runner (`patchd run --queue
// --workspace-name`), NATS in the test process.
//
// A runner kill -9'd while a slow check holds the patch it took from the
// queue is started again: the message comes again (nothing acknowledged
// it), the journal knows the patch (a Duplicate), and it is applied once:
// the file changed once, one patch.applied event, the message acknowledged
// and the view applied. A poison message (a body Submit refuses,
// published around the gateway) becomes after --max-deliver deliveries a
// dead letter on patchd.dead.<ws>, gone from PATCHD, its view failed with
// code dead_letter. After patchd restart the new daemon's runner takes
// the next patch. /health stays healthy when NATS goes down, and says the
// queue is not connected; a stop then is clean.
func TestRunnerProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := jetqtest.Server(t)
	url := srv.ClientURL()
	ctx := context.Background()
	_, js := jetqtest.Connect(t, srv)

	cfgPath, started, _ := slowCheckConfig(t)
	gate := filepath.Join(filepath.Dir(cfgPath), "gate")
	release := func() {
		// The check killed with the daemon (its own process group) may
		// still read the FIFO: a line for it and one for the new one.
		if fh, err := os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			fh.Write([]byte("go\ngo\ngo\n"))
			fh.Close()
		}
	}
	t.Cleanup(release)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	args := []string{"--port", "0", "--config", cfgPath, "--queue", url, "--workspace-name", "w", "--ack-wait", "1s", "--max-deliver", "3"}
	runner, _ := e.startRun(args...)
	e.waitRunning(15 * time.Second)

	pub := func(id string, body []byte, headers bool) {
		t.Helper()
		m := jetq.NewWorkMsg(jetq.Work{Workspace: "w", ID: id, Received: time.Now(), Body: body})
		if !headers {
			m = nats.NewMsg(jetq.WorkSubject("w"))
			m.Data = body
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub("S1", seedBlock("S1", "slow.txt"), true)
	waitFor(t, 20*time.Second, "the slow check to start", started)
	runner.Process.Kill()
	runner.Wait()
	os.Remove(filepath.Join(filepath.Dir(cfgPath), "started"))

	_, out := e.startRun(args...)
	st := e.waitRunning(15 * time.Second)
	waitFor(t, 20*time.Second, "the check to run again", started)
	release()
	read := func() string { b, _ := os.ReadFile(filepath.Join(e.ws, "slow.txt")); return string(b) }
	work, err := js.Stream(ctx, jetq.StreamWork)
	if err != nil {
		t.Fatal(err)
	}
	left := func() uint64 {
		info, err := work.Info(ctx)
		if err != nil {
			return 1 << 62
		}
		return info.State.Msgs
	}
	kv, err := js.KeyValue(ctx, jetq.BucketPatches)
	if err != nil {
		t.Fatal(err)
	}
	viewOf := func(id string) map[string]any {
		en, err := kv.Get(ctx, jetq.PatchKey("w", id))
		if err != nil {
			return nil
		}
		var v map[string]any
		json.Unmarshal(en.Value(), &v)
		return v
	}
	waitFor(t, 20*time.Second, "S1 applied, acknowledged and its view applied", func() bool {
		v := viewOf("S1")
		return read() == "seed+S1\n" && left() == 0 && v != nil && v["state"] == "applied"
	})
	evs, _ := os.ReadFile(filepath.Join(e.stateDir(), "events.jsonl"))
	if n := strings.Count(string(evs), `"event":"patch.applied","id":"S1"`); n != 1 {
		t.Errorf("events.jsonl has %d patch.applied events of S1, want 1:\n%s", n, evs)
	}
	if !strings.Contains(out.String(), "a patch received before was delivered again") {
		t.Errorf("the new runner did not log the redelivery as a duplicate:\n%s", out)
	}

	// Poison: no role; published straight to the subject, no headers.
	poison := []byte(`{"id": "bad-1", "target_file": "slow.txt", "patch": {"pattern": "x", "replacement": "y"}}`)
	pub("bad-1", poison, false)
	dead, err := js.Stream(ctx, jetq.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the poison message to become a dead letter", func() bool {
		m, err := dead.GetLastMsgForSubject(ctx, jetq.DeadSubject("w"))
		v := viewOf("bad-1")
		return err == nil && string(m.Data) == string(poison) && left() == 0 && v != nil && v["state"] == "failed" && v["code"] == "dead_letter"
	})

	code, h, err := getHealthAuth(st.Address, e.token())
	if n, _ := h["nats"].(map[string]any); err != nil || code != 200 || n["connected"] != true || n["workspace"] != "w" || n["url"] != url {
		t.Errorf("/health = %d %v %v, want 200 with nats connected to %s", code, h["nats"], err, url)
	}

	// patchd restart: the old daemon's runner stops, the new one's takes
	// the next patch.
	if r := e.run("restart"); r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	st2 := e.waitRunning(15 * time.Second)
	if st2.PID == st.PID {
		t.Fatalf("restart: still pid %d", st.PID)
	}
	os.WriteFile(filepath.Join(e.ws, "after.txt"), []byte("seed\n"), 0o644)
	pub("S2", seedBlock("S2", "after.txt"), true)
	waitFor(t, 20*time.Second, "a patch applied by the new daemon's runner", func() bool {
		b, _ := os.ReadFile(filepath.Join(e.ws, "after.txt"))
		v := viewOf("S2")
		return string(b) == "seed+S2\n" && left() == 0 && v != nil && v["state"] == "applied"
	})
	// The only runner of the workspace: the one NATS pinned it to.
	if r := e.run("status"); !strings.Contains(r.stdout, "nats: "+url+" workspace=w connected=true pinned") {
		t.Errorf("status = %s, want the runner connected and pinned", r)
	}
	st = st2
	// The old daemon stays as a keeper (a standby for the supervisor that
	// tracks its pid) and consumes nothing: one runner is connected,
	// besides this test's own connection.
	var stj struct {
		Standbys int `json:"standbys"`
	}
	json.Unmarshal([]byte(e.run("status", "--json").stdout), &stj)
	if stj.Standbys < 1 {
		t.Logf("no standby after the restart (%+v): the keeper check is moot", stj)
	}
	waitFor(t, 10*time.Second, "one runner connected to NATS", func() bool { return srv.NumClients() == 2 })

	srv.Shutdown()
	waitFor(t, 20*time.Second, "/health to say NATS is not connected", func() bool {
		code, h, err := getHealthAuth(st.Address, e.token())
		n, _ := h["nats"].(map[string]any)
		return err == nil && code == 200 && h["status"] == "ok" && n["connected"] == false
	})
	r := e.run("status", "--json")
	if !strings.Contains(r.stdout, `"nats":{"url":"`+url+`","workspace":"w","connected":false`) {
		t.Errorf("status --json = %s, want the queue not connected", r)
	}
	if r := e.run("status"); !strings.Contains(r.stdout, "nats: "+url+" workspace=w connected=false error=") {
		t.Errorf("status = %s, want a line saying the queue is not connected and why", r)
	}
	// A stop with NATS down is clean.
	if r := e.run("stop"); r.code != 0 {
		t.Errorf("stop: %s", r)
	}
}
