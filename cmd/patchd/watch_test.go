package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watchLines runs `patchd patches watch` with args and hands its output
// lines on a channel, closed when it exits.
func (e *tenv) watchLines(t *testing.T, args ...string) (lines <-chan string, stop func() int) {
	t.Helper()
	cmd := e.command(append([]string{"patches", "watch"}, args...)...)
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := make(chan string, 100)
	go func() {
		defer close(c)
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c <- strings.TrimSuffix(line, "\n")
		}
	}()
	done := false
	stop = func() int {
		if done {
			return 0
		}
		done = true
		cmd.Process.Signal(syscall.SIGINT)
		for range c {
		}
		cmd.Wait()
		t.Logf("watch stderr: %s", stderr.String())
		return cmd.ProcessState.ExitCode()
	}
	t.Cleanup(func() { stop() })
	return c, stop
}

// nextLine returns the next line within 20 s.
func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("patches watch exited")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no line from patches watch within 20s")
	}
	return ""
}

// TestWatchProcess: `patchd patches watch --json` prints every event as
// its JSON line, and follows the daemon through `patchd restart` with
// Last-Event-ID: the events of patches sent before and after it come in
// a row, none missing, none twice; plain `watch` prints one readable line
// per event, without colour when its output is not a terminal; an interrupt ends it with 0. With no daemon it exits 3.
func TestWatchProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.run("patches", "watch"); r.code != 3 {
		t.Errorf("patches watch with no daemon: %s, want exit 3", r)
	}
	for i := range 3 {
		os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("f%d.txt", i)), []byte("seed\n"), 0o644)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	post := func(id, file string) {
		t.Helper()
		if code, body, err := cl.do("POST", "/webhook", seedBlock(id, file)); err != nil || code != 202 {
			t.Fatalf("POST %s = %d %s %v", id, code, body, err)
		}
	}
	// --after 0: from the first event, whenever each connects.
	jsonLines, stopJSON := e.watchLines(t, "--json", "--after", "0")
	plain, stopPlain := e.watchLines(t, "--after", "0")
	post("p0", "f0.txt")
	var ids []uint64
	var got []string
	read := func(until string) {
		t.Helper()
		for {
			var ev struct {
				EventID      uint64 `json:"event_id"`
				Event, ID    string
				State, Error string
			}
			l := nextLine(t, jsonLines)
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.EventID == 0 {
				t.Fatalf("watch --json printed %q, not an event's JSON: %v", l, err)
			}
			ids = append(ids, ev.EventID)
			got = append(got, ev.ID+" "+ev.State)
			if ev.ID+" "+ev.State == until {
				return
			}
		}
	}
	read("p0 applied")
	if r := e.run("restart"); r.code != 0 {
		t.Fatalf("restart: %s", r)
	}
	// The old daemon closed the keep-alive connections it handed over
	// idle; a POST on one the client had not seen closed yet is not
	// retried by net/http: start afresh.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	post("p1", "f1.txt")
	post("p2", "f2.txt")
	read("p2 applied")
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Errorf("event ids %v: a gap or a repeat across the restart (%v)", ids, got)
			break
		}
	}
	if n := strings.Count(strings.Join(got, ","), "applied"); n != 3 || len(got) != 9 {
		t.Errorf("watch --json across a restart: %v, want each of p0, p1, p2 queued, applying, applied", got)
	}
	if code := stopJSON(); code != 0 {
		t.Errorf("watch --json after SIGINT exited %d, want 0", code)
	}
	var lines []string
	for len(lines) < 9 {
		lines = append(lines, nextLine(t, plain))
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "applied") || !strings.Contains(all, "p2") || strings.Contains(all, "\x1b[") || strings.Contains(all, "{") {
		t.Errorf("plain watch to a pipe printed:\n%s\nwant readable lines naming the patches, no colour, no JSON", all)
	}
	if code := stopPlain(); code != 0 {
		t.Errorf("watch after SIGINT exited %d, want 0", code)
	}
}
