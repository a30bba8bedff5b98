package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/histgen"
)

// historyPatches is the length of the history TestLongHistory builds. A
// race-built test builds it about six times slower (25,000: 4 to 16 s,
// with the machine quiet or loaded), and a race-built daemon reads it
// about ten times slower, so it is shorter there.
func historyPatches() int {
	if raceEnabled {
		return 25_000
	}
	return 100_000
}

// A request's wait during a handover, and the handover itself, must not
// grow with the history (issue 13: at most 100 ms and 2× the empty
// history's, measured by go run ./bench). The machine these tests run on
// is shared and loaded, so this test compares with its own figures on an
// empty history, measured just before on the same machine, and with
// bounds a correct build meets with room to spare: a start, a takeover
// and the longest wait of a request during a restart each at most
// historyBound (a second; two for a race-built daemon, which starts about
// three times slower), and at most historyFactor times the empty
// history's figure plus historySlack (what a scheduler can take from
// anything); starts and takeovers are measured twice and the faster
// counts. Empty, on this machine under load: start 0.6 s, wait 0.4 s,
// takeover 0.3 s (race-built). A store that replays its whole journal at
// every start misses both by far: with 25,000 patches race-built it took
// 5.8 s, 7.0 s and 4.6 s; with 100,000 without -race 4.5 s, 3.2 s and
// 5.1 s (empty: 0.17 s, 0.18 s, 0.03 s).
const (
	historyFactor = 4
	historySlack  = 250 * time.Millisecond
)

// historyBound is the most a start, a takeover or a wait may take with
// the long history, whatever the empty history's figures.
func historyBound() time.Duration {
	if raceEnabled {
		return 2 * time.Second
	}
	return time.Second
}

// TestLongHistory: with a long history in the state dir, `patchd start`
// to healthy, a standby's takeover after kill -9, and the longest wait of
// any request while `patchd restart` hands over under a steady load, stay
// within the bounds above of the same figures with an empty history.
func TestLongHistory(t *testing.T) {
	t.Parallel()
	empty := measureHistory(t, 0)
	long := measureHistory(t, historyPatches())
	t.Logf("empty history: %s", empty)
	t.Logf("%d patches: %s", long.patches, long)
	check := func(what string, got, base time.Duration) {
		t.Helper()
		limit := min(historyBound(), historyFactor*base+historySlack)
		if got > limit {
			t.Errorf("%s with %d patches in the history: %s, want at most %s (%d× the empty history's %s + %s, at most %s)",
				what, long.patches, got.Round(time.Millisecond), limit.Round(time.Millisecond), historyFactor, base.Round(time.Millisecond), historySlack, historyBound())
		}
	}
	check("patchd start to healthy", long.start, empty.start)
	check("the longest wait of a request during a restart", long.restartWait, empty.restartWait)
	check("standby takeover after kill -9", long.takeover, empty.takeover)
}

// historyFigures is what measureHistory saw.
type historyFigures struct {
	patches     int
	built       time.Duration
	start       time.Duration
	restartWait time.Duration // the longest of any request, over the restarts
	restarts    int
	requests    int
	takeover    time.Duration
}

func (f historyFigures) String() string {
	return fmt.Sprintf("built in %s; start %s; longest wait during %d restarts %s (%d requests); takeover %s",
		f.built.Round(time.Millisecond), f.start.Round(time.Millisecond), f.restarts,
		f.restartWait.Round(time.Millisecond), f.requests, f.takeover.Round(time.Millisecond))
}

// measureHistory builds a history of n patches in a fresh workspace's
// state dir and measures the real binary on it.
func measureHistory(t *testing.T, n int) historyFigures {
	t.Helper()
	e := newEnv(t)
	f := historyFigures{patches: n}
	if n > 0 {
		res, err := histgen.Build(context.Background(), e.stateDir(), n, histgen.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f.built = res.Took
	}
	os.WriteFile(filepath.Join(e.ws, "load.txt"), []byte("x\n"), 0o644)

	// Start to healthy, twice (the faster counts: one run can lose the
	// CPU to another test for a while).
	for i := range 2 {
		if i > 0 {
			if r := e.run("stop"); r.code != 0 {
				t.Fatalf("stop: %s", r)
			}
		}
		t0 := time.Now()
		// A minute to be ready, not 15 s: the figure, not the refusal.
		if _, r := e.start("--start-timeout", "60s"); r.code != 0 {
			t.Fatalf("start with %d patches: %s", n, r)
		}
		if took := time.Since(t0); i == 0 || took < f.start {
			f.start = took
		}
	}
	st, _ := e.status()

	// Clients that keep sending, each a request every 20 ms (fewer than
	// the worker applies, so no backlog weighs on what follows).
	const clients = 8
	var (
		mu   sync.Mutex
		reqs []timedReq
		wg   sync.WaitGroup
		fail []string
	)
	stop := make(chan struct{})
	token := e.token()
	for w := range clients {
		wg.Go(func() {
			hc := &http.Client{Timeout: 60 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				id := fmt.Sprintf("hist-%d-%d", w, i)
				body := fmt.Sprintf(`{"id":%q,"role":"load","target_file":"load.txt","patch":{"pattern":"^x","replacement":"x"}}`, id)
				req, _ := http.NewRequest("POST", "http://"+st.Address+"/webhook", bytes.NewReader([]byte(body)))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				sent := time.Now()
				resp, err := hc.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				reqs = append(reqs, timedReq{sent, time.Now()})
				if code != http.StatusAccepted && len(fail) < 5 {
					fail = append(fail, fmt.Sprintf("POST %s: %d %v", id, code, err))
				}
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(reqs) }
	waitFor(t, 30*time.Second, "the load to flow", func() bool { return count() > 2*clients })
	for range 3 {
		r0 := time.Now()
		if r := e.run("restart"); r.code != 0 {
			close(stop)
			wg.Wait()
			t.Fatalf("restart with %d patches: %s", n, r)
		}
		r1 := time.Now()
		// The requests in flight during the restart are answered before
		// requests sent after them: wait for two rounds of those.
		after := count()
		waitFor(t, 30*time.Second, "requests after the restart", func() bool { return count() > after+2*clients })
		mu.Lock()
		for _, q := range reqs {
			if q.sent.Before(r1) && q.answered.After(r0) {
				f.restartWait = max(f.restartWait, q.answered.Sub(q.sent))
			}
		}
		mu.Unlock()
		f.restarts++
	}
	close(stop)
	wg.Wait()
	f.requests = len(reqs)
	if len(fail) > 0 {
		t.Errorf("with %d patches: requests failed during the restarts: %v", n, fail)
	}
	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}

	// A standby takes over after kill -9 of the active daemon, twice in a
	// row (the faster counts).
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	active, _ := e.startRun("--port", fmt.Sprint(port), "--fallback-port", "none")
	waitFor(t, 60*time.Second, "the active daemon", func() bool {
		code, _, err := getHealth(addr)
		return err == nil && code == 200
	})
	for i := range 2 {
		standby, out := e.startRun("--port", fmt.Sprint(port), "--fallback-port", "none")
		waitFor(t, 60*time.Second, "the standby to stand by", func() bool { return strings.Contains(out.String(), "standing by") })
		t0 := time.Now()
		active.Process.Signal(syscall.SIGKILL)
		waitFor(t, 60*time.Second, "the standby to answer", func() bool {
			_, body, err := getHealthAuth(addr, token)
			pid, _ := body["pid"].(float64)
			return err == nil && int(pid) == standby.Process.Pid
		})
		if took := time.Since(t0); i == 0 || took < f.takeover {
			f.takeover = took
		}
		active = standby
	}
	active.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, active, 60*time.Second); code != 0 {
		t.Errorf("the standby that took over exited %d on SIGTERM", code)
	}
	return f
}

// timedReq is one request of the load: when it was sent and answered.
type timedReq struct{ sent, answered time.Time }
