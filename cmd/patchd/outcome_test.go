//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attemptsView is what GET /patches/{id} says of a patch's attempts.
type attemptsView struct {
	State    string `json:"state"`
	Attempt  int    `json:"attempt"`
	Attempts []struct {
		Attempt int    `json:"attempt"`
		Error   string `json:"error"`
		Code    string `json:"code"`
	} `json:"attempts"`
}

func (c *client) attempts(t *testing.T, id string) attemptsView {
	t.Helper()
	code, body, err := c.do("GET", "/patches/"+id, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /patches/%s = %d %s, %v", id, code, body, err)
	}
	var v attemptsView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestResendFailedProcess: a patch id that failed is not burned: the same
// body again is the duplicate answer (200, failed), another body is a new
// attempt (202) that is applied, and the patch's history shows the failed
// attempt, also after a restart.
func TestResendFailedProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("start", "--port", "0"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	c := e.client(st.Address)
	bad := []byte(`{"id":"R1","role":"fix","target_file":"a.txt","patch":{"search":"no such text","replace":"x"}}`)
	if code, body, err := c.do("POST", "/webhook", bad); err != nil || code != 202 {
		t.Fatalf("POST /webhook = %d %s, %v; want 202", code, body, err)
	}
	waitFor(t, 20*time.Second, "R1 to fail", func() bool { p, _ := c.patch(t, "R1"); return p.State == "failed" })
	if code, body, err := c.do("POST", "/webhook", bad); err != nil || code != 200 ||
		!jsonHas(body, `"state":"failed"`, `"duplicate":true`) {
		t.Errorf("POST of the failed body again = %d %s, %v; want 200, the duplicate, failed", code, body, err)
	}
	good := []byte(`{"id":"R1","role":"fix","target_file":"a.txt","patch":{"search":"seed","replace":"grown"}}`)
	if code, body, err := c.do("POST", "/webhook", good); err != nil || code != 202 ||
		!jsonHas(body, `"state":"queued"`, `"attempt":2`) {
		t.Fatalf("POST of another body = %d %s, %v; want 202, queued, attempt 2", code, body, err)
	}
	waitFor(t, 20*time.Second, "R1 to be applied", func() bool { p, _ := c.patch(t, "R1"); return p.State == "applied" })
	if got, _ := os.ReadFile(filepath.Join(e.ws, "a.txt")); string(got) != "grown\n" {
		t.Errorf("a.txt = %q, want the second attempt's change", got)
	}
	check := func(when string) {
		t.Helper()
		v := c.attempts(t, "R1")
		if v.State != "applied" || v.Attempt != 2 || len(v.Attempts) != 1 || v.Attempts[0].Attempt != 1 ||
			v.Attempts[0].Code != "match_not_found" || v.Attempts[0].Error == "" {
			t.Errorf("%s: GET /patches/R1 = %+v; want applied, attempt 2, after attempt 1 failed with match_not_found", when, v)
		}
	}
	check("applied")
	if r := e.run("patches", "show", "R1"); r.code != 0 || !strings.Contains(r.stdout, "attempt: 2\n") ||
		!strings.Contains(r.stdout, "attempt 1: failed (match_not_found): search text not found in a.txt") {
		t.Errorf("patches show R1: %s; want attempt 2 and the failed attempt 1", r)
	}
	if code, body, err := c.do("POST", "/webhook", bad); err != nil || code != 409 || !jsonHas(body, `"code":"id_conflict"`) {
		t.Errorf("POST of the first body once applied = %d %s, %v; want 409", code, body, err)
	}
	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if r := e.run("start", "--port", "0"); r.code != 0 {
		t.Fatalf("start again: %s", r)
	}
	st, _ = e.status()
	c = e.client(st.Address)
	check("after a restart")
}

// jsonHas reports whether body holds every one of parts.
func jsonHas(body []byte, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(string(body), p) {
			return false
		}
	}
	return true
}

// outcome is a webhook answer that waited for the patch's outcome.
type outcome struct {
	Status string `json:"status"`
	Result struct {
		Success bool     `json:"success"`
		PatchID string   `json:"patch_id"`
		State   string   `json:"state"`
		Error   string   `json:"error"`
		Code    string   `json:"code"`
		Diff    string   `json:"diff"`
		Files   []string `json:"files"`
		Note    string   `json:"note"`
	} `json:"result"`
}

func (c *client) postWait(t *testing.T, query, body string) (int, outcome, string) {
	t.Helper()
	code, data, err := c.do("POST", "/webhook"+query, []byte(body))
	if err != nil {
		t.Fatalf("POST /webhook%s: %v", query, err)
	}
	var o outcome
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatalf("POST /webhook%s = %d %s: %v", query, code, data, err)
	}
	return code, o, string(data)
}

// TestWebhookWaitProcess: POST /webhook?wait= (or "wait_seconds") answers
// with the outcome: applied (200, the diff and files), failed (200,
// success false, the teaching refusal and its code), or, while a check
// holds the worker past the wait, 202 with the state and a note to call
// getPatch; the patch is applied once the check lets it go.
func TestWebhookWaitProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\ndef greet(name):\n    return 'hello ' + name\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	c := e.client(st.Address)
	c.http.Timeout = time.Minute

	code, o, raw := c.postWait(t, "?wait=30s", `{"id":"A1","role":"fix","target_file":"a.txt","patch":{"search":"seed","replace":"grown"}}`)
	if code != 200 || o.Status != "applied" || !o.Result.Success || o.Result.State != "applied" ||
		!strings.Contains(o.Result.Diff, "+grown") || len(o.Result.Files) != 1 || o.Result.Files[0] != "a.txt" {
		t.Errorf("wait for an applied patch = %d %s; want 200 applied with its diff and files", code, raw)
	}
	code, o, raw = c.postWait(t, "", `{"id":"F1","role":"fix","target_file":"a.txt","wait_seconds":30,"patch":{"search":"def greet(name: str):\n    return 'hello ' + name","replace":"x"}}`)
	if code != 200 || o.Status != "failed" || o.Result.Success || o.Result.State != "failed" || o.Result.Code != "match_not_found" ||
		!strings.Contains(o.Result.Error, "search text not found in a.txt") || !strings.Contains(o.Result.Error, "closest match (lines 2-3") {
		t.Errorf("wait for a failing patch = %d %s; want 200, success false, state failed, the refusal with the closest lines", code, raw)
	}
	code, o, raw = c.postWait(t, "?wait=1s", string(seedBlock("S1", "slow.txt")))
	if code != 202 || !o.Result.Success || (o.Result.State != "applying" && o.Result.State != "queued") ||
		!strings.Contains(o.Result.Note, "call getPatch (GET /patches/S1)") {
		t.Errorf("wait past the bound = %d %s; want 202, queued or applying, with a note to call getPatch", code, raw)
	}
	waitFor(t, 20*time.Second, "the slow check to start", started)
	release()
	waitFor(t, 20*time.Second, "S1 to be applied", func() bool { p, _ := c.patch(t, "S1"); return p.State == "applied" })
	// A finished patch sent again answers its outcome at once.
	code, o, raw = c.postWait(t, "?wait=30s", `{"id":"A1","role":"fix","target_file":"a.txt","patch":{"search":"seed","replace":"grown"}}`)
	if code != 200 || o.Status != "applied" || !strings.Contains(raw, `"duplicate":true`) {
		t.Errorf("the applied patch again, waiting = %d %s; want 200 applied, duplicate", code, raw)
	}
	if code, _, raw := c.postWait(t, "?wait=2m", string(seedBlock("X1", "a.txt"))); code != 400 || !strings.Contains(raw, `"field":"wait"`) {
		t.Errorf("wait=2m = %d %s; want 400 naming wait", code, raw)
	}
}

// TestSendWaitProcess: `patchd send --wait` exits 0 only when the patch is
// applied (printing its diff), 1 when it failed (printing the refusal and
// its code), and 7 when it is not finished within the wait, saying it is
// still queued or applying and how to check it; --json prints the answer.
func TestSendWaitProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\ndef greet(name):\n    return 'hello ' + name\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	send := func(body string, args ...string) result {
		t.Helper()
		cmd := e.command(append([]string{"send"}, append(args, "-")...)...)
		cmd.Stdin = strings.NewReader(body)
		return runCmd(t, cmd)
	}
	r := send(`{"id":"A1","role":"fix","target_file":"a.txt","patch":{"search":"seed","replace":"grown"}}`, "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "applied: id=A1") || !strings.Contains(r.stdout, "+grown") {
		t.Errorf("send --wait of a patch that applies: %s; want exit 0 and its diff", r)
	}
	r = send(`{"id":"F1","role":"fix","target_file":"a.txt","patch":{"search":"def greet(name: str):\n    return 'hello ' + name","replace":"x"}}`, "--wait=20s")
	if r.code != 1 || !strings.Contains(r.stderr, "patch F1 failed (match_not_found)") || !strings.Contains(r.stderr, "closest match (lines 2-3") {
		t.Errorf("send --wait of a patch that fails: %s; want exit 1 with the refusal and its code", r)
	}
	r = send(`{"id":"F1","role":"fix","target_file":"a.txt","patch":{"search":"def greet(name: str):\n    return 'hello ' + name","replace":"x"}}`, "--wait", "--json")
	var a struct {
		Status string `json:"status"`
		Result struct {
			State string `json:"state"`
			Code  string `json:"code"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); r.code != 1 || err != nil || a.Status != "failed" || a.Result.Code != "match_not_found" {
		t.Errorf("send --wait --json of the failed patch again: %s (%v); want exit 1 and the answer as JSON", r, err)
	}
	r = send(string(seedBlock("S1", "slow.txt")), "--wait=1s")
	if r.code != 7 || !strings.Contains(r.stderr, "patch S1 is still") || !strings.Contains(r.stderr, "patchd patches show S1") {
		t.Errorf("send --wait=1s behind a slow check: %s; want exit 7, still queued or applying, and how to check it", r)
	}
	waitFor(t, 20*time.Second, "the slow check to start", started)
	release()
	if r := e.run("send", "--wait=2m", "-"); r.code != 2 || !strings.Contains(r.stderr, "--wait") {
		t.Errorf("send --wait=2m: %s; want exit 2 naming --wait", r)
	}
	if r := e.run("send", "--wait", "30s", "p.json"); r.code != 2 || !strings.Contains(r.stderr, "--wait=30s") {
		t.Errorf("send --wait 30s p.json: %s; want exit 2 saying to write --wait=30s", r)
	}
}

// TestWaitDuringRestart: a sender waiting for an outcome when the daemon
// is restarted is answered at once (202, the patch stored, a note saying
// patchd restarts), not cut off, and the restart does not wait for its
// wait; the patch is applied by the new daemon or the old.
func TestWaitDuringRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	c := e.client(st.Address)
	c.http.Timeout = time.Minute
	type answer struct {
		code int
		raw  []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, raw, err := c.do("POST", "/webhook?wait=40s", seedBlock("S1", "slow.txt"))
		answered <- answer{code, raw, err}
	}()
	waitFor(t, 20*time.Second, "the slow check to start", started)
	restarted := make(chan result, 1)
	go func() { restarted <- e.run("restart", "--config", cfgPath) }()
	var a answer
	select {
	case a = <-answered:
	case r := <-restarted:
		t.Fatalf("restart ended (%s) before the waiting sender was answered", r)
	}
	var o outcome
	json.Unmarshal(a.raw, &o)
	if a.err != nil || a.code != 202 || o.Result.State != "applying" || !strings.Contains(o.Result.Note, "restarting or stopping") {
		t.Errorf("the waiting sender during a restart got %d %s, %v; want 202 applying, saying patchd restarts", a.code, a.raw, a.err)
	}
	release()
	if r := <-restarted; r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	st, _ = e.status()
	c = e.client(st.Address)
	waitFor(t, 20*time.Second, "S1 to be applied", func() bool { p, _ := c.patch(t, "S1"); return p.State == "applied" })
}
