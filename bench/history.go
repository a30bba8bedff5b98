package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/patchd/patchd/internal/histgen"
	"github.com/patchd/patchd/internal/store"
)

// histRow is what one history size measured. Every measurement runs on
// one copy of the history built for the size (the daemon adds the
// patches of the loads to it; a few thousand on top of the history do
// not change what is measured).
type histRow struct {
	size     int
	build    histgen.Result
	copyTook time.Duration
	// err says why the size's measurements stopped early, "" if they
	// did not.
	err        string
	start      timedRuns
	takeover   timedRuns
	restart    restartWaits
	idleRSS    int64
	idleAnon   int64  // its anonymous part
	idleNote   string // how the idle size was taken
	loadRSS    int64
	loadQueued int // patches queued at the end of the load (-1: unknown)
	loadAnon   int64
	loadRate   float64
	loadFail   int
	gets       []getResult
}

// timedRuns are repeated measurements of one duration, each cut at a cap.
type timedRuns struct {
	tries    int
	runs     []time.Duration // of the runs that finished in time, sorted
	timedOut int             // runs cut at the cap
	failed   []string        // runs that failed otherwise: why
	cap      time.Duration
}

func (t *timedRuns) add(d time.Duration, err error) {
	t.tries++
	switch {
	case err == nil:
		t.runs = append(t.runs, d)
		slices.Sort(t.runs)
	case d >= t.cap || errors.Is(err, context.DeadlineExceeded):
		t.timedOut++
	default:
		t.failed = append(t.failed, lastLine(err.Error()))
	}
}

// figure is the median of the runs, and whether every run finished.
func (t timedRuns) figure() (time.Duration, bool) {
	if len(t.runs) == 0 {
		return 0, false
	}
	return median(t.runs), len(t.runs) == t.tries
}

func (t timedRuns) String() string {
	if t.tries == 0 {
		return "–"
	}
	var parts []string
	if len(t.runs) > 0 {
		s := "median " + ms(median(t.runs))
		if len(t.runs) > 1 {
			s += fmt.Sprintf(" (%s–%s, %d runs)", ms(t.runs[0]), ms(t.runs[len(t.runs)-1]), len(t.runs))
		}
		parts = append(parts, s)
	}
	if t.timedOut > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d timed out (> %s)", t.timedOut, t.tries, t.cap))
	}
	if len(t.failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d failed: %s", len(t.failed), t.failed[0]))
	}
	return strings.Join(parts, "; ")
}

// restartWaits is `patchd restart` repeated while clients send: for each
// restart, the longest any request that was in flight during it waited.
type restartWaits struct {
	clients  int
	took     timedRuns       // the restart commands
	waits    []time.Duration // per finished restart, sorted
	requests int
	failed   int
	errs     []string
}

// longest is the longest wait of any request during any restart.
func (r restartWaits) longest() time.Duration {
	if len(r.waits) == 0 {
		return 0
	}
	return r.waits[len(r.waits)-1]
}

// getResult is the latency of one kind of GET, repeated.
type getResult struct {
	name   string
	lat    []time.Duration // sorted
	failed int
	errs   []string
}

// histories measures, for each size of -history, a daemon whose state
// dir holds that many patches, built through the store's API.
func (b *bench) histories(ctx context.Context, rep *report) error {
	for _, n := range b.opts.histSizes {
		row := &histRow{size: n, loadQueued: -1}
		rep.history = append(rep.history, row)
		err := b.historyRow(ctx, row)
		b.procs.killAll()
		b.settle()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row.err = lastLine(err.Error())
			logf("history %d: %v", n, err)
		}
	}
	return nil
}

func (b *bench) historyRow(ctx context.Context, row *histRow) error {
	n, capd := row.size, b.opts.histTimeout
	tmpl := filepath.Join(b.tmp, fmt.Sprintf("history-%d", n))
	defer os.RemoveAll(tmpl)
	logf("history %d: building it through the store API", n)
	res, err := histgen.Build(ctx, filepath.Join(tmpl, "state"), n, histgen.Options{
		Progress: func(done int) { logf("history %d: %d patches", n, done) },
	})
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	row.build = res
	logf("history %d: %s", n, res.Describe())
	ws := b.workspace(fmt.Sprintf("history%d", n))
	t0 := time.Now()
	if err := histgen.Copy(filepath.Join(tmpl, "state"), filepath.Join(ws, ".patchd")); err != nil {
		return fmt.Errorf("copy the history: %w", err)
	}
	row.copyTook = time.Since(t0)
	if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
		return err
	}
	syscall.Sync()

	// Start to healthy, from a stopped daemon each time (the history in
	// the page cache: a daemon restarted, not a machine booted).
	row.start.cap = capd
	var d *daemon
	for i := range b.opts.histRuns {
		logf("history %d: start %d of %d", n, i+1, b.opts.histRuns)
		var took time.Duration
		d, took, err = b.startCapped(ctx, ws)
		row.start.add(took, err)
		if err != nil {
			// It may still come up: the rest is measured on it if so.
			if d, err = b.awaitDaemon(ctx, ws, 2*capd); err != nil {
				return fmt.Errorf("start: no daemon within %s", 3*capd)
			}
			break
		}
		if i < b.opts.histRuns-1 {
			if err := d.stop(ctx); err != nil {
				return err
			}
		}
	}

	row.idleRSS, row.idleNote = settledRSS(d.pid, 30*time.Second)
	row.idleAnon = rssAnon(d.pid)
	logf("history %d: idle %s (%s)", n, mib(row.idleRSS), row.idleNote)

	if err := b.historyGets(ctx, d, row); err != nil {
		return err
	}

	if err := b.historyRestarts(ctx, d, row); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*capd)
	err = d.stop(sctx)
	cancel()
	if err != nil {
		return err
	}
	return b.historyTakeovers(ctx, ws, row)
}

// startCapped is `patchd start` whose wait for the daemon is cut at
// -history-timeout.
func (b *bench) startCapped(ctx context.Context, ws string) (*daemon, time.Duration, error) {
	capd := b.opts.histTimeout
	ctx2, cancel := context.WithTimeout(ctx, capd+10*time.Second)
	defer cancel()
	d, took, err := b.startPatchd(ctx2, ws, "--start-timeout", capd.String())
	if err != nil && took == 0 {
		took = capd
	}
	return d, took, err
}

// awaitDaemon waits up to limit for the workspace's daemon to run.
func (b *bench) awaitDaemon(ctx context.Context, ws string, limit time.Duration) (*daemon, error) {
	d := &daemon{b: b, bin: b.patchd, ws: ws}
	var err error
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = d.refresh(ctx); err == nil {
			if err = waitHealthy(ctx, d.addr, time.Second); err == nil {
				return d, nil
			}
		}
	}
	return nil, err
}

// settledRSS is the resident size of pid once it has used no CPU for a
// second (its start's work done), or after limit if it never rests.
func settledRSS(pid int, limit time.Duration) (int64, string) {
	t0 := time.Now()
	last, since := cpuTime(pid), time.Now()
	for time.Since(t0) < limit {
		time.Sleep(100 * time.Millisecond)
		if c := cpuTime(pid); c != last {
			last, since = c, time.Now()
			continue
		}
		if time.Since(since) >= time.Second {
			return rss(pid), fmt.Sprintf("no CPU used for 1 s, %s after healthy", time.Since(t0).Round(100*time.Millisecond))
		}
	}
	return rss(pid), fmt.Sprintf("still busy %s after healthy", limit)
}

// historyGets times the reads a client or an agent makes of the history.
func (b *bench) historyGets(ctx context.Context, d *daemon, row *histRow) error {
	n := row.size
	// A few patches of its own, so that an empty history has some to
	// read, and the reads see a store that is in use.
	body := newPatchBody("src/app.py")
	var own []string
	for k := range 100 {
		id := patchID(fmt.Sprintf("hg%d", n), 0, k)
		if code, msg, err := d.post(ctx, body.make(id)); err != nil || code != http.StatusAccepted {
			return fmt.Errorf("POST %s: %d %s %v", id, code, msg, err)
		}
		own = append(own, id)
	}
	for deadline := time.Now().Add(b.opts.histTimeout); ; time.Sleep(20 * time.Millisecond) {
		q, err := d.queue(ctx)
		if err == nil && q.Queued == 0 && q.Applying == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the worker did not apply 100 patches within %s", b.opts.histTimeout)
		}
	}
	ids := own
	mid := uint64(50)
	if n > 0 {
		ids = nil
		rng := rand.New(rand.NewPCG(uint64(n), 13))
		for range b.opts.histGets {
			ids = append(ids, fmt.Sprintf("h%d", rng.IntN(n)))
		}
		mid = uint64(n/2) + 1
	}
	kinds := []struct {
		name string
		path func(i int) string
	}{
		{"GET /patches (newest first, 50)", func(int) string { return "/patches" }},
		{"GET /patches?state=applied", func(int) string { return "/patches?state=applied" }},
		{"GET /patches?state=failed (1 in 20)", func(int) string { return "/patches?state=failed" }},
		{"GET /patches?state=queued (none queued)", func(int) string { return "/patches?state=queued" }},
		{"GET /patches?cursor=… (a page from the middle)", func(int) string {
			return "/patches?cursor=" + store.CursorAfter(store.Patch{Seq: mid, ID: fmt.Sprintf("h%d", mid-1)})
		}},
		{"GET /patches/{id} (random ids)", func(i int) string { return "/patches/" + ids[i%len(ids)] }},
	}
	hc := &http.Client{Timeout: b.opts.histTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	for _, k := range kinds {
		logf("history %d: %d × %s", n, b.opts.histGets, k.name)
		g := getResult{name: k.name}
		t0 := time.Now()
		for i := 0; i < b.opts.histGets && time.Since(t0) < b.opts.histTimeout; i++ {
			lat, err := timedGet(ctx, hc, d, k.path(i))
			if err != nil {
				g.failed++
				if len(g.errs) < 3 {
					g.errs = append(g.errs, err.Error())
				}
				continue
			}
			g.lat = append(g.lat, lat)
		}
		slices.Sort(g.lat)
		row.gets = append(row.gets, g)
	}
	return nil
}

// timedGet GETs path with the token and reads the whole answer, which
// must be 200.
func timedGet(ctx context.Context, hc *http.Client, d *daemon, path string) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return took, nil
}

// restartGap is how long each client of the restarts' load waits between
// its requests: 16 clients then send about 300 patches a second, fewer
// than the worker applies, so that no backlog builds up to weigh on the
// daemons that follow (a request every 3 ms on average: the longest wait
// is seen within that).
const restartGap = 50 * time.Millisecond

// historyRestarts runs `patchd restart` -history-restarts times while 16
// clients keep sending, and finds for each the longest wait of a request
// in flight while it ran.
func (b *bench) historyRestarts(ctx context.Context, d *daemon, row *histRow) error {
	const clients = 16
	n, capd := row.size, b.opts.histTimeout
	rw := &row.restart
	rw.clients, rw.took.cap = clients, capd
	type req struct {
		sent, answered time.Time
		ok             bool
	}
	var (
		mu   sync.Mutex
		reqs []req
	)
	var progress atomic.Int64
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan loadResult, 1)
	body := newPatchBody("src/app.py")
	go func() {
		done <- runLoad(lctx, load{
			url: "http://" + d.addr + "/webhook", token: d.token, clients: clients,
			dur: time.Hour, progress: &progress, gap: restartGap,
			body: func(c, k int) []byte { return body.make(patchID(fmt.Sprintf("hr%d", n), c, k)) },
			each: func(sent, answered time.Time, ok bool) {
				mu.Lock()
				reqs = append(reqs, req{sent, answered, ok})
				mu.Unlock()
			},
		})
	}()
	waitProgress := func(k int64) {
		want := progress.Load() + k
		for deadline := time.Now().Add(capd); progress.Load() < want && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitProgress(200)
	type window struct{ from, to time.Time }
	var windows []window
	for i := range b.opts.histRestarts {
		logf("history %d: restart %d of %d under %d clients", n, i+1, b.opts.histRestarts, clients)
		rctx, rcancel := context.WithTimeout(ctx, capd)
		t0 := time.Now()
		_, err := b.runPatchd(rctx, d.ws, "restart")
		t1 := time.Now()
		rcancel()
		rw.took.add(t1.Sub(t0), err)
		if err != nil {
			logf("history %d: %v", n, err)
			if _, err := b.awaitDaemon(ctx, d.ws, 2*capd); err != nil {
				break
			}
			continue
		}
		windows = append(windows, window{t0, t1})
		waitProgress(50)
	}
	// The requests in flight at the last restart's end have been answered
	// once more have been acknowledged after it.
	waitProgress(int64(2 * clients))
	cancel()
	l := <-done
	rw.requests, rw.failed, rw.errs = l.ok+l.failed, l.failed, l.errs
	mu.Lock()
	defer mu.Unlock()
	for _, w := range windows {
		var longest time.Duration
		for _, r := range reqs {
			if r.sent.Before(w.to) && r.answered.After(w.from) {
				longest = max(longest, r.answered.Sub(r.sent))
			}
		}
		rw.waits = append(rw.waits, longest)
	}
	slices.Sort(rw.waits)
	return nil
}

// historyTakeovers measures standby takeovers after kill -9 on the
// history: `patchd run` active, a second one standing by, the first
// killed, until the second answers /health on the same port.
func (b *bench) historyTakeovers(ctx context.Context, ws string, row *histRow) error {
	n, capd := row.size, b.opts.histTimeout
	row.takeover.cap = capd
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	active, err := b.startRun(ws, port)
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, addr, capd); err != nil {
		// The first daemon's start is as slow as a takeover would be:
		// report the takeover as timed out, not the size as broken.
		logf("history %d: takeover: the active daemon: %v", n, err)
		row.takeover.add(capd, context.DeadlineExceeded)
		active.cmd.Process.Kill()
		<-active.exited
		return nil
	}
	tok, err := os.ReadFile(filepath.Join(ws, ".patchd", "token"))
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tok))
	defer func() {
		active.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-active.exited:
		case <-time.After(capd):
			active.cmd.Process.Kill()
			<-active.exited
		}
	}()
	// Last, on the daemon that took over: the resident size under load
	// (its backlog would weigh on every figure measured after it).
	defer func() {
		select {
		case <-active.exited:
			return
		default:
		}
		logf("history %d: resident size under 64 clients of ingest", n)
		body := newPatchBody("src/app.py")
		l := runLoad(ctx, load{
			url: "http://" + addr + "/webhook", token: token, clients: 64,
			warmup: 500 * time.Millisecond, dur: b.opts.histLoad, rssPID: active.cmd.Process.Pid,
			body: func(c, k int) []byte { return body.make(patchID(fmt.Sprintf("hl%d", n), c, k)) },
		})
		row.loadRSS, row.loadAnon, row.loadRate, row.loadFail = l.maxRSS, l.maxAnon, l.rate(), l.failed
		// What the load left queued: a queued patch lives in memory, so
		// the resident size follows it (bench/notes.md).
		row.loadQueued, _ = healthQueued(ctx, addr, token)
	}()
	for i := range b.opts.histRuns {
		logf("history %d: takeover %d of %d", n, i+1, b.opts.histRuns)
		standby, err := b.startRun(ws, port)
		if err != nil {
			return err
		}
		select {
		case <-standby.standing:
		case <-standby.exited:
			return errors.New("takeover: the standby exited instead of standing by")
		case <-time.After(capd):
			return fmt.Errorf("takeover: the standby did not say it stands by within %s", capd)
		}
		t0 := time.Now()
		active.cmd.Process.Signal(syscall.SIGKILL)
		<-active.exited
		active = standby
		took := time.Duration(0)
		for deadline := t0.Add(capd); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
			if pid, ok := healthPIDToken(ctx, addr, token, 200*time.Millisecond); ok && pid == standby.cmd.Process.Pid {
				took = time.Since(t0)
				break
			}
		}
		if took == 0 {
			row.takeover.add(capd, context.DeadlineExceeded)
			// The rest would only wait as long again.
			return nil
		}
		row.takeover.add(took, nil)
	}
	return nil
}
