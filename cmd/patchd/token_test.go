package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenRotate: `patchd token --rotate` writes a new token (mode 0600,
// whole) and the running daemon puts it in force without a restart: the
// old token and a signature made with it are refused, the new ones
// accepted, by the same process (issue 12: the token is all that stands
// between the internet and the workspace).
func TestTokenRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	old := e.token()
	n := 0
	send := func(bearer, signWith string) int {
		t.Helper()
		n++
		body := fmt.Sprintf(`{"id":"t%d","role":"r","target_file":"f%d.txt","patch":{"search":"","replace":"x\n"}}`, n, n)
		h := map[string]string{"Content-Type": "application/json"}
		if bearer != "" {
			h["Authorization"] = "Bearer " + bearer
		}
		if signWith != "" {
			m := hmac.New(sha256.New, []byte(signWith))
			m.Write([]byte(body))
			h["X-Patchd-Signature"] = "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		code, _ := hreq{method: "POST", path: "/webhook", headers: h, body: body}.send(t, st.Address)
		return code
	}
	if code := send(old, ""); code != 202 {
		t.Fatalf("the first token: %d", code)
	}

	r = e.run("token", "--rotate", "--json")
	if r.code != 0 {
		t.Fatalf("token --rotate: %s", r)
	}
	var a struct {
		Token   string `json:"token"`
		Rotated bool   `json:"rotated"`
		Daemon  string `json:"daemon"`
		PID     int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || !a.Rotated || a.Daemon != "reloaded" || a.PID != pid {
		t.Fatalf("token --rotate --json = %q (%v), want rotated, reloaded by pid %d", r.stdout, err, pid)
	}
	if a.Token == old || len(a.Token) != 64 || e.token() != a.Token {
		t.Fatalf("the new token %q (file %q), the old %q", a.Token, e.token(), old)
	}
	fi, err := os.Stat(filepath.Join(e.stateDir(), "token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if code := send(old, ""); code != 401 {
		t.Errorf("the old token after --rotate: %d, want 401", code)
	}
	if code := send("", old); code != 401 {
		t.Errorf("a signature made with the old token: %d, want 401", code)
	}
	if code := send(a.Token, ""); code != 202 {
		t.Errorf("the new token: %d, want 202", code)
	}
	if code := send("", a.Token); code != 202 {
		t.Errorf("a signature made with the new token: %d, want 202", code)
	}
	code, _ := hreq{method: "GET", path: "/patches", headers: map[string]string{"Authorization": "Bearer " + old}}.send(t, st.Address)
	if code != 401 {
		t.Errorf("GET /patches with the old token: %d, want 401", code)
	}
	// No restart: the same process serves.
	if st2, _ := e.status(); st2.PID != pid {
		t.Errorf("pid %d after --rotate, was %d", st2.PID, pid)
	}
	// The CLI's own commands read the new token.
	if r := e.run("health"); r.code != 0 {
		t.Errorf("health after --rotate: %s", r)
	}

	// With no daemon running the rotation says so.
	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	r = e.run("token", "--rotate")
	if r.code != 0 || strings.TrimSpace(r.stdout) != e.token() || !strings.Contains(r.stderr, "no daemon runs") {
		t.Errorf("token --rotate without a daemon: %s", r)
	}
}
