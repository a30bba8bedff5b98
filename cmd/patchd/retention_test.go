package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pruneAnswer is `patchd patches prune --json`.
type pruneAnswer struct {
	Retain       string `json:"retain"`
	DryRun       bool   `json:"dry_run"`
	Expired      int    `json:"expired"`
	Kept         int    `json:"kept"`
	Protected    int    `json:"protected"`
	BytesFreed   int64  `json:"bytes_freed"`
	JournalBytes int64  `json:"journal_bytes"`
	Daemon       string `json:"daemon"`
}

func (e *tenv) prune(args ...string) pruneAnswer {
	e.t.Helper()
	r := e.run(append([]string{"patches", "prune", "--json"}, args...)...)
	var a pruneAnswer
	if err := json.Unmarshal([]byte(r.stdout), &a); r.code != 0 || err != nil {
		e.t.Fatalf("patches prune --json %v: %s (%v)", args, r, err)
	}
	return a
}

// TestRetention: --retain refuses a bad value in one line; `patchd
// patches prune` expires what the policy selects but never the newest
// patch of a file, with the daemon up (over its control socket) and down
// (over the store); --dry-run changes nothing; an expired patch answers
// 410 with code expired, also after a restart, and its summary is gone;
// the daemon prunes by its --retain when it starts.
func TestRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, bad := range []string{"soon", "30d,40d", "-1"} {
		r := e.run("start", "--port", "0", "--retain", bad)
		if r.code != 2 || !strings.Contains(r.stderr, "--retain: must be") || !strings.Contains(r.stderr, `"`+bad+`"`) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("start --retain %s: %s, want exit 2 and one line naming --retain and the value", bad, r)
		}
	}
	if len(e.pids()) != 0 {
		t.Fatal("a daemon runs after a refused --retain")
	}

	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "b.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--retain", "forever"); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	send := func(id, file, pattern string) {
		t.Helper()
		cmd := e.command("send", "--wait=20s", "-")
		cmd.Stdin = strings.NewReader(`{"id":"` + id + `","role":"r","target_file":"` + file + `","patch":{"pattern":"` + pattern + `","replacement":"` + id + `"}}`)
		r := runCmd(t, cmd)
		if r.code != 0 && r.code != 1 {
			t.Fatalf("send %s: %s", id, r)
		}
	}
	// R1 and R3 change a.txt, R2 b.txt; F1 fails. With --retain 1 only
	// R1 may expire: F1 is the newest patch, R3 and R2 the newest of
	// their files.
	send("R1", "a.txt", "(?s).+")
	send("R2", "b.txt", "(?s).+")
	send("R3", "a.txt", "(?s).+")
	send("F1", "a.txt", "absent")
	st, _ := e.status()
	c := e.client(st.Address)
	summaries := filepath.Join(e.stateDir(), "summaries")
	waitFor(t, 10*time.Second, "the summaries", func() bool {
		_, err := os.Stat(summaryFile(summaries, "F1"))
		return err == nil
	})
	r1Summary := summaryFile(summaries, "R1")

	dry := e.prune("--dry-run", "--retain", "1")
	if !dry.DryRun || dry.Expired != 1 || dry.Kept != 3 || dry.Protected != 2 || dry.Retain != "1" || dry.Daemon != "running" {
		t.Errorf("prune --dry-run --retain 1 = %+v, want 1 to expire, 3 kept, 2 protected, by the running daemon", dry)
	}
	if p, code := c.patch(t, "R1"); code != 200 || p.State != "applied" {
		t.Errorf("after a dry run GET /patches/R1 = %d %+v, want 200 applied", code, p)
	}
	r := e.run("patches", "prune", "--retain", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "expired: 1 patches") || !strings.Contains(r.stdout, "kept: 3 patches") ||
		!strings.Contains(r.stdout, "kept past the policy: 2") {
		t.Errorf("patches prune --retain 1: %s", r)
	}
	expired := func(id string) {
		t.Helper()
		code, body, err := c.do("GET", "/patches/"+id, nil)
		if err != nil || code != 410 || !strings.Contains(string(body), `"expired"`) || !strings.Contains(string(body), `patch \"`+id+`\" expired at`) {
			t.Errorf("GET /patches/%s = %d %s, %v; want 410, code expired, saying when", id, code, body, err)
		}
	}
	expired("R1")
	if code, body, err := c.do("POST", "/webhook", []byte(`{"id":"R1","role":"r","target_file":"a.txt","patch":{"pattern":"x","replacement":"y"}}`)); err != nil || code != 410 || !strings.Contains(string(body), "use a new id") {
		t.Errorf("POST /webhook with the expired id R1 = %d %s, %v; want 410 saying to use a new id", code, body, err)
	}
	if r := e.run("patches", "revert", "R1"); r.code != 1 || !strings.Contains(r.stderr, "410") || !strings.Contains(r.stderr, "expired at") {
		t.Errorf("patches revert R1 (expired): %s, want exit 1, HTTP 410 saying it expired", r)
	}
	if _, err := os.Stat(r1Summary); !os.IsNotExist(err) {
		t.Errorf("summary of the expired R1 (%s): %v, want deleted", r1Summary, err)
	}
	for _, id := range []string{"R2", "R3", "F1"} {
		if _, err := os.Stat(summaryFile(summaries, id)); err != nil {
			t.Errorf("summary of %s (kept): %v", id, err)
		}
	}
	if r := e.run("patches", "revert", "R3"); r.code != 0 {
		t.Errorf("patches revert R3, the newest patch of a.txt: %s", r)
	}

	// With no daemon: over the store. F2 is now the newest; F1 expires.
	// The daemon is killed, not stopped: the expiry it acknowledged is
	// durable.
	send("F2", "a.txt", "absent")
	syscall.Kill(st.PID, syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the killed daemon to go", func() bool { return len(e.pids()) == 0 })
	off := e.prune("--retain", "1")
	if off.Expired != 1 || off.Daemon != "not running" || off.Retain != "1" {
		t.Errorf("prune --retain 1 with no daemon = %+v, want 1 expired (F1), over the store", off)
	}
	if _, r := e.start("--retain", "forever"); r.code != 0 {
		t.Fatalf("start again: %s", r)
	}
	st, _ = e.status()
	c = e.client(st.Address)
	expired("R1")
	expired("F1")

	// The daemon prunes soon after it starts (5 s), by its own
	// --retain: F3 is the newest, so F2 goes.
	send("F3", "b.txt", "absent")
	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if _, r := e.start("--retain", "1"); r.code != 0 {
		t.Fatalf("start --retain 1: %s", r)
	}
	st, _ = e.status()
	c = e.client(st.Address)
	waitFor(t, 20*time.Second, "the prune after the start to expire F2", func() bool {
		code, _, _ := c.do("GET", "/patches/F2", nil)
		return code == 410
	})
	if p, code := c.patch(t, "F3"); code != 200 {
		t.Errorf("GET /patches/F3 = %d %+v, want kept", code, p)
	}
	// Its own policy unless told another.
	if a := e.prune(); a.Retain != "1" || a.Expired != 0 || a.Daemon != "running" {
		t.Errorf("patches prune with the daemon's --retain 1 = %+v, want retain 1, nothing more", a)
	}
	events, _ := os.ReadFile(filepath.Join(e.stateDir(), "events.jsonl"))
	if n := bytes.Count(events, []byte(`"patch.expired"`)); n != 3 {
		t.Errorf("events.jsonl has %d patch.expired events, want 3 (R1, F1, F2)", n)
	}
}
