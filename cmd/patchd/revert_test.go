//go:build unix

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowCheckConfig writes a config file whose check holds the worker, for
// patches of slow.txt, until the test releases it: it marks that it
// started, then waits on a FIFO.
func slowCheckConfig(t *testing.T) (cfgPath string, started func() bool, release func()) {
	t.Helper()
	dir := t.TempDir()
	fifo, mark := filepath.Join(dir, "gate"), filepath.Join(dir, "started")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			// Not blocking: a check that timed out left no reader. A
			// line, so that read succeeds (at end of file it fails).
			if fh, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				fh.Write([]byte("go\n"))
				fh.Close()
			}
		}
	}
	t.Cleanup(release)
	cfg, _ := json.Marshal(map[string]any{"checks": []map[string]any{{
		// The FIFO is opened (read-write: that does not wait for a
		// writer) before the mark is made, so that a release once the
		// mark is seen always finds its reader.
		"name": "slow", "command": `exec 3<>'` + fifo + `'; : > '` + mark + `'; read x <&3`, "paths": []string{"slow.txt"}, "timeout": "1m",
	}}})
	cfgPath = filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	started = func() bool { _, err := os.Stat(mark); return err == nil }
	return cfgPath, started, release
}

// TestRevertBehindSlowPatch: while a slow check holds the worker, `patchd
// patches revert --wait 1s` is refused (exit 1, HTTP 503 naming the busy
// patch) and nothing is reverted, then or later; once the worker is free
// the revert is carried through, recorded and logged as an event.
func TestRevertBehindSlowPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	send := func(id, file string) {
		t.Helper()
		cmd := e.command("send", "-")
		cmd.Stdin = strings.NewReader(string(seedBlock(id, file)))
		if r := runCmd(t, cmd); r.code != 0 {
			t.Fatalf("send %s: %s", id, r)
		}
	}
	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(e.ws, name))
		return string(data)
	}
	send("R1", "a.txt")
	waitFor(t, 10*time.Second, "R1 to apply", func() bool { return read("a.txt") == "seed+R1\n" })
	send("S1", "slow.txt")
	waitFor(t, 10*time.Second, "the slow check to start", started)

	start := time.Now()
	r := e.run("patches", "revert", "R1", "--wait", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "503") || !strings.Contains(r.stderr, "busy applying patch S1") || !strings.Contains(r.stderr, "not started") {
		t.Errorf("revert behind a slow patch: %s, want exit 1, HTTP 503 naming S1 and saying the revert was not started", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("revert --wait 1s took %s", d)
	}
	release()
	waitFor(t, 10*time.Second, "S1 to apply", func() bool { return read("slow.txt") == "seed+S1\n" })
	if r := e.run("patches", "show", "R1"); !strings.Contains(r.stdout, "state: applied") || read("a.txt") != "seed+R1\n" {
		t.Errorf("after a refused revert: a.txt = %q, %s; want R1 applied and its content kept", read("a.txt"), r)
	}
	if r := e.run("patches", "revert", "R1"); r.code != 0 {
		t.Fatalf("revert once the worker is free: %s", r)
	}
	if r := e.run("patches", "show", "R1"); !strings.Contains(r.stdout, "state: reverted") || read("a.txt") != "seed\n" {
		t.Errorf("after the revert: a.txt = %q, %s; want R1 reverted and the file restored", read("a.txt"), r)
	}
	waitFor(t, 10*time.Second, "the revert's event", func() bool {
		events, _ := os.ReadFile(filepath.Join(e.stateDir(), "events.jsonl"))
		return strings.Contains(string(events), `"event":"patch.reverted","id":"R1"`)
	})
	log, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
	for _, want := range []string{"revert not started: the worker is busy applying patch S1", "patch reverted"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
