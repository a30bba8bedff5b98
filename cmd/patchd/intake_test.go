package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// client posts to a running daemon with its token.
type client struct {
	base, token string
	http        *http.Client
}

func (e *tenv) client(address string) *client {
	return &client{base: "http://" + address, token: e.token(), http: &http.Client{Timeout: 10 * time.Second}}
}

func (c *client) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	var local string
	var reused bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		local, reused = i.Conn.LocalAddr().String(), i.Reused
	}}))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w (conn %s reused %v)", err, local, reused)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

type patchState struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error"`
	Diff  string `json:"diff"`
}

func (c *client) patch(t *testing.T, id string) (patchState, int) {
	t.Helper()
	code, body, err := c.do("GET", "/patches/"+id, nil)
	if err != nil {
		t.Fatalf("GET /patches/%s: %v", id, err)
	}
	var p patchState
	json.Unmarshal(body, &p)
	return p, code
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func seedBlock(id, file string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"role":"ci_patch","target_file":%q,"description":"mark %s","patch":{"pattern":"seed\\n","replacement":"seed+%s\n"}}`,
		id, file, id, id))
}

// TestIntakeSurvivesKill9: sixteen clients submit patches, the daemon is
// killed with -9 mid-stream, restarted, and every acknowledged patch is
// there and applied exactly once; no file is torn.
func TestIntakeSurvivesKill9(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const clients, perClient = 16, 40
	for c := range clients {
		for i := range perClient {
			os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("f-%d-%d.txt", c, i)), []byte("seed\n"), 0o644)
		}
	}
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)

	var acked sync.Map
	var nacked atomic.Int64
	killAt := int64(clients * perClient / 3)
	var killOnce sync.Once
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				id := fmt.Sprintf("p-%d-%d", c, i)
				code, _, err := cl.do("POST", "/webhook", seedBlock(id, fmt.Sprintf("f-%d-%d.txt", c, i)))
				if err != nil {
					return // the daemon is gone
				}
				if code == http.StatusAccepted {
					acked.Store(id, true)
					if nacked.Add(1) == killAt {
						killOnce.Do(func() { syscall.Kill(pid, syscall.SIGKILL) })
					}
				} else {
					t.Errorf("POST %s = %d", id, code)
				}
			}
		}()
	}
	wg.Wait()
	if nacked.Load() < killAt {
		t.Fatalf("only %d patches acknowledged before the kill", nacked.Load())
	}
	waitFor(t, 5*time.Second, "the killed daemon to go", func() bool { return len(e.pids()) == 0 })

	pid2, r := e.start()
	if r.code != 0 || pid2 == pid {
		t.Fatalf("restart: %s", r)
	}
	st, _ = e.status()
	cl = e.client(st.Address)
	n := 0
	acked.Range(func(k, _ any) bool {
		id := k.(string)
		n++
		var p patchState
		waitFor(t, 30*time.Second, "patch "+id+" to be applied", func() bool {
			var code int
			p, code = cl.patch(t, id)
			if code == 404 {
				t.Fatalf("acknowledged patch %s is unknown after kill -9 and restart", id)
			}
			return p.State == "applied" || p.State == "failed"
		})
		if p.State != "applied" {
			t.Errorf("patch %s: %s (%s), want applied", id, p.State, p.Error)
		}
		return true
	})
	t.Logf("%d patches acknowledged before and around the kill, all found after restart", n)

	// Every file holds its original or its patched content: never torn,
	// never patched twice.
	for c := range clients {
		for i := range perClient {
			id := fmt.Sprintf("p-%d-%d", c, i)
			data, _ := os.ReadFile(filepath.Join(e.ws, fmt.Sprintf("f-%d-%d.txt", c, i)))
			got := string(data)
			if got != "seed\n" && got != "seed+"+id+"\n" {
				t.Errorf("file of %s = %q, want the original or the patch applied once", id, got)
			}
			if _, ok := acked.Load(id); ok && got != "seed+"+id+"\n" {
				t.Errorf("acknowledged %s not applied to its file: %q", id, got)
			}
		}
	}
}

// TestSendPatchesRevert drives the CLI a user has: send, patches list,
// show, revert, and token, against a running daemon.
func TestSendPatchesRevert(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	orig := "def greet():\r\n    return 'hello'\n# no newline at end"
	os.MkdirAll(filepath.Join(e.ws, "src"), 0o755)
	os.WriteFile(filepath.Join(e.ws, "src", "app.py"), []byte(orig), 0o640)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	blockFile := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(blockFile, []byte(`{"id":"P8.13.22","role":"ui_patch","target_file":"src/app.py","description":"greet the world","patch":{"pattern":"'(hello)'","replacement":"'$1, world'","expand":true},"metadata":{"author":"gpt"}}`), 0o644)
	if r := e.run("send", blockFile); r.code != 0 || !strings.Contains(r.stdout, "accepted: id=P8.13.22") {
		t.Fatalf("send: %s", r)
	}
	want := "def greet():\r\n    return 'hello, world'\n# no newline at end"
	waitFor(t, 10*time.Second, "the patch to apply", func() bool {
		data, _ := os.ReadFile(filepath.Join(e.ws, "src", "app.py"))
		return string(data) == want
	})
	if r := e.run("send", blockFile); r.code != 0 || !strings.Contains(r.stdout, "already received") {
		t.Errorf("send again: %s, want accepted as already received", r)
	}
	cmd := e.command("send", "-")
	cmd.Stdin = strings.NewReader(`{"id":"bad","role":"r","target_file":"../../etc/passwd","patch":{"pattern":"root","replacement":"x"}}`)
	if r := runCmd(t, cmd); r.code != 1 || !strings.Contains(r.stderr, "escapes the workspace") {
		t.Errorf("send of an escaping path: %s, want exit 1 naming the reason", r)
	}
	// The same refusals over HTTP carry a code and the field at fault.
	st, _ := e.status()
	cl := e.client(st.Address)
	for _, tt := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/webhook", `{"id":"m1"}`, 400, "field_missing", "role"},
		{"POST", "/webhook", `{"id":"bad","role":"r","target_file":"../../etc/passwd","patch":{"pattern":"root","replacement":"x"}}`, 400, "path_outside_workspace", "target_file"},
		{"POST", "/webhook", strings.Replace(string(mustRead(t, blockFile)), "greet the world", "other", 1), 409, "id_conflict", "id"},
		{"GET", "/patches/nope", "", 404, "patch_not_found", "id"},
	} {
		status, body, err := cl.do(tt.method, tt.path, []byte(tt.body))
		var a struct {
			Result struct{ Error, Code, Field string } `json:"result"`
		}
		json.Unmarshal(body, &a)
		if err != nil || status != tt.status || a.Result.Code != tt.code || a.Result.Field != tt.field || a.Result.Error == "" {
			t.Errorf("%s %s %s = %d %s, %v; want %d with code %s, field %s", tt.method, tt.path, tt.body, status, body, err, tt.status, tt.code, tt.field)
		}
	}
	if r := e.run("patches", "list"); r.code != 0 || !strings.Contains(r.stdout, "P8.13.22") || !strings.Contains(r.stdout, "applied") {
		t.Errorf("patches list: %s", r)
	}
	if r := e.run("patches", "show", "P8.13.22"); r.code != 0 || !strings.Contains(r.stdout, "+    return 'hello, world'") {
		t.Errorf("patches show: %s, want the diff", r)
	}
	if r := e.run("patches", "revert", "P8.13.22"); r.code != 0 {
		t.Fatalf("patches revert: %s", r)
	}
	data, _ := os.ReadFile(filepath.Join(e.ws, "src", "app.py"))
	if string(data) != orig {
		t.Errorf("after revert = %q, want %q byte for byte", data, orig)
	}
	if fi, _ := os.Stat(filepath.Join(e.ws, "src", "app.py")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after revert = %v, want 0640", fi.Mode().Perm())
	}
	if r := e.run("patches", "revert", "P8.13.22"); r.code != 1 || !strings.Contains(r.stderr, "not applied") {
		t.Errorf("second revert: %s, want exit 1 (409 not applied)", r)
	}
	if r := e.run("patches", "show", "nope"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("show of an unknown id: %s", r)
	}
	sum, err := os.ReadFile(summaryFile(filepath.Join(e.stateDir(), "summaries"), "P8.13.22"))
	if err != nil || !strings.Contains(string(sum), "reverted") || !strings.Contains(string(sum), "greet the world") {
		t.Errorf("summary = %q, %v", sum, err)
	}
	events, _ := os.ReadFile(filepath.Join(e.stateDir(), "events.jsonl"))
	for _, ev := range []string{"patch.submitted", "patch.applying", "patch.applied", "patch.reverted"} {
		if !strings.Contains(string(events), ev) {
			t.Errorf("events.jsonl lacks %s:\n%s", ev, events)
		}
	}
	tok := e.run("token")
	if tok.code != 0 || strings.TrimSpace(tok.stdout) != e.token() {
		t.Errorf("token: %s, want the token alone", tok)
	}
	fi, _ := os.Stat(filepath.Join(e.stateDir(), "token"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token mode = %v, want 0600", fi.Mode().Perm())
	}
}

// TestSummariesDir: --summaries-dir puts summaries where another tool reads
// them.
func TestSummariesDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "shared-summaries")
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--summaries-dir", dir); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	cmd := e.command("send", "-")
	cmd.Stdin = bytes.NewReader(seedBlock("S1", "a.txt"))
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	waitFor(t, 10*time.Second, "the summary", func() bool {
		_, err := os.Stat(summaryFile(dir, "S1"))
		return err == nil
	})
}

// TestNoAuthRefusedOnPublicHost: --no-auth with a non-loopback host is a
// usage error before anything starts.
func TestNoAuthRefusedOnPublicHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run("run", "--no-auth", "--host", "0.0.0.0", "--port", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "--no-auth is refused with --host 0.0.0.0") {
		t.Errorf("run --no-auth --host 0.0.0.0: %s, want exit 2 explaining", r)
	}
}

// TestLostSummaryRewritten: summaries are written without fsync, so a
// crash can lose one; the daemon rewrites it after its next start.
func TestLostSummaryRewritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--port", "0"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	cmd := e.command("send", "-")
	cmd.Stdin = bytes.NewReader(seedBlock("L1", "a.txt"))
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	var path string
	var want []byte
	waitFor(t, 10*time.Second, "the summary", func() bool {
		path = summaryFile(filepath.Join(e.stateDir(), "summaries"), "L1")
		want, _ = os.ReadFile(path)
		return len(want) > 0
	})
	st, _ := e.status()
	syscall.Kill(st.PID, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the killed daemon to go", func() bool { return len(e.pids()) == 0 })
	os.WriteFile(path, nil, 0o644) // what a crash can leave of it
	if _, r := e.start("--port", "0"); r.code != 0 {
		t.Fatalf("start after the crash: %s", r)
	}
	waitFor(t, 10*time.Second, "the summary rewritten", func() bool {
		got, _ := os.ReadFile(path)
		return bytes.Equal(got, want)
	})
}

// summaryFile is where the summary of patch id is under dir: in the
// subdirectory of the UTC date it was received, dir/YYYY/MM/DD/<id>.md
// (today's when there is none yet).
func summaryFile(dir, id string) string {
	if m, _ := filepath.Glob(filepath.Join(dir, "[0-9]*", "[0-9]*", "[0-9]*", id+".md")); len(m) > 0 {
		return m[0]
	}
	return filepath.Join(dir, time.Now().UTC().Format("2006/01/02"), id+".md")
}
