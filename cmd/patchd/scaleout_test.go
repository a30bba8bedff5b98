//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/natsconf"
)

// lineBlock is patch k of a workspace's log.txt: it adds line L<k> after
// L<k-1>, so it applies only after patch k-1, and the file ends as
// L0..Ln only if every patch applied once, in order.
func lineBlock(ws string, k int) string {
	return fmt.Sprintf(`{"id":"%s-%d","role":"test","target_file":"log.txt","patch":{"search":"L%d\n","replace":"L%d\nL%d\n"}}`,
		ws, k, k-1, k-1, k)
}

// TestScaleOutTwoWorkspaces: the real binaries end to end. `patchd
// gateway --embedded-nats` (its NATS server secured by natsconf: the
// runners connect over TCP as run-a and run-b, with the passwords it
// generated) takes many patches for two workspaces over HTTP; two real
// runners (`patchd run --queue --workspace-name`) apply them. Each
// workspace's log ends with every line once, in the order the gateway
// acknowledged them; each runner applied each of its patches once and
// none of the other's; the gateway's views say applied.
func TestScaleOutTwoWorkspaces(t *testing.T) {
	t.Parallel()
	const n = 20
	gw, base, natsPort, _, gout := startGateway(t, "a,b")
	token := gw.token()
	creds := natsconf.CredentialsDir(gw.state)

	runners := map[string]*tenv{}
	for _, ws := range []string{"a", "b"} {
		e := newEnv(t)
		if err := os.WriteFile(filepath.Join(e.ws, "log.txt"), []byte("L0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.startRun("--port", "0", "--queue", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--workspace-name", ws,
			"--nats-user", natsconf.RunnerUser(ws), "--nats-password-file", filepath.Join(creds, natsconf.RunnerUser(ws)+".password"))
		e.waitRunning(20 * time.Second)
		runners[ws] = e
	}

	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	for _, ws := range []string{"a", "b"} {
		wg.Go(func() {
			for k := 1; k <= n; k++ {
				// One at a time: the order the sender saw acknowledged.
				if code, body := post("/ws/"+ws+"/webhook", lineBlock(ws, k)); code != http.StatusAccepted {
					t.Errorf("POST %s-%d: %d %s", ws, k, code, body)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("gateway output:\n%s", gout)
	}

	var want strings.Builder
	for k := 0; k <= n; k++ {
		fmt.Fprintf(&want, "L%d\n", k)
	}
	for ws, e := range runners {
		read := func() string { b, _ := os.ReadFile(filepath.Join(e.ws, "log.txt")); return string(b) }
		var events []byte
		// The file is written before the outcome is journaled: wait for both.
		waitFor(t, 60*time.Second, "workspace "+ws+" to hold every line, its last patch applied", func() bool {
			events, _ = os.ReadFile(filepath.Join(e.stateDir(), "events.jsonl"))
			return read() == want.String() && strings.Contains(string(events), fmt.Sprintf(`"event":"patch.applied","id":"%s-%d"`, ws, n))
		})
		other := map[string]string{"a": "b", "b": "a"}[ws]
		for k := 1; k <= n; k++ {
			if c := strings.Count(string(events), fmt.Sprintf(`"event":"patch.applied","id":"%s-%d"`, ws, k)); c != 1 {
				t.Errorf("workspace %s applied %s-%d %d times, want once", ws, ws, k, c)
			}
		}
		if strings.Contains(string(events), `"id":"`+other+`-`) {
			t.Errorf("workspace %s's journal has patches of %s", ws, other)
		}
	}
	// The gateway's view of the last patch of each, from the runners' KV.
	for _, ws := range []string{"a", "b"} {
		waitFor(t, 20*time.Second, "the gateway's view of "+ws+"'s last patch", func() bool {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/ws/%s/patches/%s-%d", base, ws, ws, n), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var v struct{ State, Workspace string }
			return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&v) == nil && v.State == "applied" && v.Workspace == ws
		})
	}
}
