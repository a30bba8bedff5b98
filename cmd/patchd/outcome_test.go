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
