package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// appendBlock is a patch that visibly applies twice: "seed" becomes
// "seed+<id>", and a second application would make it "seed+<id>+<id>".
func appendBlock(id, file string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"role":"ci_patch","target_file":%q,"description":"crash loop","patch":{"pattern":"seed","replacement":"seed+%s"}}`,
		id, file, id))
}

// tempLeftover is the name workspace.WriteFile gives its temporary files.
var tempLeftover = regexp.MustCompile(`^\.(.+)\.patchd-tmp-[0-9a-f]{16}$`)

// TestCrashLoop: twenty rounds of concurrent load, each ended by kill -9 at
// a random moment (after a random number of acknowledgements or a random
// delay) and followed by a restart. Senders retry what got no answer, as a
// real sender would. In the end every acknowledged patch is applied, none
// twice, and every file holds its original or its patched content, never a
// mix.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const rounds, clients = 20, 4
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	var (
		mu     sync.Mutex
		acked  = map[string]bool{} // answered 202, or 200 to a retry
		unsure = map[string]bool{} // sent, no answer: stored or not
		cut    int                 // requests cut by a kill
		files  = map[string]string{}
	)
	// send posts one patch and files the answer. It reports false when the
	// daemon is gone.
	send := func(cl *client, id string, retry bool) bool {
		code, body, err := cl.do("POST", "/webhook", appendBlock(id, id+".txt"))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			unsure[id] = true
			cut++
			return false
		case code == http.StatusAccepted, code == http.StatusOK && retry:
			acked[id] = true
			delete(unsure, id)
		default:
			t.Errorf("POST %s (retry %v) = %d %s", id, retry, code, body)
		}
		return true
	}
	newPatch := func(id string) {
		file := id + ".txt"
		if err := os.WriteFile(filepath.Join(e.ws, file), []byte("seed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		files[id] = file
		mu.Unlock()
	}
	retries := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var ids []string
		for id := range unsure {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids
	}

	start := func(round int) (pid int, cl *client) {
		t.Helper()
		pid, r := e.start()
		if r.code != 0 || pid == 0 {
			t.Fatalf("round %d: start after kill -9: %s", round, r)
		}
		st, _ := e.status()
		cl = e.client(st.Address)
		// What was acknowledged before is known at once: nothing is
		// rebuilt lazily behind the sender's back.
		_, h, err := getHealthAuth(st.Address, e.token())
		q, _ := h["queue"].(map[string]any)
		total, _ := q["total"].(float64)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if err != nil || int(total) < n {
			t.Fatalf("round %d: after restart the daemon knows %v patches, %d were acknowledged (%v)", round, total, n, err)
		}
		return pid, cl
	}

	var schedule []string
	for round := range rounds {
		pid, cl := start(round)
		kill := sync.OnceFunc(func() { syscall.Kill(pid, syscall.SIGKILL) })
		var killAfter int64 = -1
		if round%2 == 0 {
			killAfter = 1 + rng.Int64N(80)
			schedule = append(schedule, fmt.Sprintf("%d acks", killAfter))
		} else {
			d := time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
			schedule = append(schedule, d.Round(time.Millisecond).String())
			time.AfterFunc(d, kill)
		}
		// A safety net: the round ends even if the schedule never fires.
		safety := time.AfterFunc(20*time.Second, kill)

		todo := retries()
		var n atomic.Int64
		var wg sync.WaitGroup
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < len(todo); i += clients {
					if !send(cl, todo[i], true) {
						return
					}
				}
				for i := 0; ; i++ {
					id := fmt.Sprintf("r%02d-c%d-%d", round, c, i)
					newPatch(id)
					if !send(cl, id, false) {
						return
					}
					if n.Add(1) == killAfter {
						kill()
					}
				}
			}()
		}
		wg.Wait()
		safety.Stop()
		waitFor(t, 10*time.Second, "the killed daemon to go", func() bool { return len(e.pids()) == 0 })
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("kills after: %s", strings.Join(schedule, ", "))

	// The last restart: resend what never got an answer, until it does.
	_, cl := start(rounds)
	for _, id := range retries() {
		if !send(cl, id, true) {
			t.Fatalf("daemon gone while resending %s", id)
		}
	}
	if len(unsure) > 0 {
		t.Fatalf("%d patches still unanswered after the last restart", len(unsure))
	}
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) != len(files) {
		t.Errorf("%d patches acknowledged, %d sent", len(ids), len(files))
	}
	waitFor(t, 60*time.Second, "every patch to be settled", func() bool {
		_, h, err := getHealthAuth(cl.base[len("http://"):], cl.token)
		q, _ := h["queue"].(map[string]any)
		return err == nil && q["queued"] == 0.0 && q["applying"] == 0.0
	})
	for _, id := range ids {
		p, code := cl.patch(t, id)
		if code != http.StatusOK {
			t.Errorf("acknowledged patch %s: GET = %d, want 200", id, code)
			continue
		}
		if p.State != "applied" {
			t.Errorf("acknowledged patch %s: %s (%s), want applied", id, p.State, p.Error)
		}
	}

	// The workspace: each file patched exactly once, none torn, and nothing
	// else: no temporary file either.
	var leftovers []string
	entries, err := os.ReadDir(e.ws)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for id, f := range files {
		targets[f] = id
	}
	for _, ent := range entries {
		name := ent.Name()
		if name == ".patchd" {
			continue
		}
		if m := tempLeftover.FindStringSubmatch(name); m != nil && targets[m[1]] != "" {
			leftovers = append(leftovers, name)
			continue
		}
		id, ok := targets[name]
		if !ok {
			t.Errorf("unexpected file in the workspace: %s", name)
			continue
		}
		data, _ := os.ReadFile(filepath.Join(e.ws, name))
		switch got := string(data); got {
		case "seed+" + id + "\n":
		case "seed+" + id + "+" + id + "\n":
			t.Errorf("%s patched twice: %q", name, got)
		default:
			t.Errorf("%s = %q, want %q (torn or lost)", name, got, "seed+"+id+"\n")
		}
	}
	log, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
	t.Logf("%d rounds, %d patches acknowledged, all applied once; %d requests cut by a kill and resent; %d patches found applying after a kill",
		rounds, len(ids), cut, strings.Count(string(log), "recovered a patch applied before a crash")+strings.Count(string(log), "cut short by a crash"))
	// A write cut by a kill leaves its temporary file; the restart that
	// settles the patch removes it.
	if len(leftovers) > 0 {
		t.Errorf("%d temporary files left by kills mid-write: %v", len(leftovers), leftovers)
	}
}
