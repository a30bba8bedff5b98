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

// TestPreviewBehindSlowPatch: while a slow check holds the worker, POST
// /patches/preview answers with its diff; the check still runs then (it
// waits for the test to release it), so the preview did not wait for it.
func TestPreviewBehindSlowPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	if code, body, err := cl.do("POST", "/webhook", seedBlock("S1", "slow.txt")); err != nil || code != 202 {
		t.Fatalf("send S1: %d %s %v", code, body, err)
	}
	waitFor(t, 10*time.Second, "the slow check to start", started)

	// The client's 10 s timeout turns a preview that waits for the check
	// into a failure; nothing here measures how long it took.
	code, body, err := cl.do("POST", "/patches/preview", seedBlock("V1", "a.txt"))
	if p, _ := cl.patch(t, "S1"); p.State != "applying" {
		t.Errorf("S1 = %s when the preview answered, want applying (its check still held)", p.State)
	}
	var a struct {
		Result struct {
			Files []string `json:"files"`
			Diff  string   `json:"diff"`
		} `json:"result"`
	}
	if err != nil || code != 200 || json.Unmarshal(body, &a) != nil || !strings.Contains(a.Result.Diff, "-seed\n+seed+V1") {
		t.Fatalf("preview while a check holds the worker: %d %s %v, want 200 with the diff of a.txt", code, body, err)
	}
	release()
	waitFor(t, 10*time.Second, "S1 to leave applying", func() bool { p, _ := cl.patch(t, "S1"); return p.State != "applying" })
	if p, _ := cl.patch(t, "S1"); p.State != "applied" {
		t.Errorf("S1 = %s %q, want applied", p.State, p.Error)
	}
	if data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt")); string(data) != "seed\n" {
		t.Errorf("a.txt = %q after a preview, want it unchanged", data)
	}
}
