package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/benchdata"
)

// e2eResult is the end-to-end throughput: patches from the first POST to
// the last one applied.
type e2eResult struct {
	patches, clients, files int
	posted                  time.Duration // until every POST was acknowledged
	done                    time.Duration // until every patch was applied
	failed                  int           // patches that ended failed
}

func (r e2eResult) rate() float64 { return float64(r.patches) / r.done.Seconds() }

// bigResult is the latency of single regex patches on a 1 MiB file.
type bigResult struct {
	name    string
	pattern string
	client  []time.Duration // POST sent to `applied` seen by polling, sorted
	server  []time.Duration // received_at to finished_at, sorted
	failed  int
}

// endToEnd measures patches applied per second, then the latency of one
// patch on a 1 MiB file.
func (b *bench) endToEnd(ctx context.Context, rep *report) error {
	if err := b.throughput(ctx, rep); err != nil {
		return err
	}
	return b.bigFile(ctx, rep)
}

func (b *bench) throughput(ctx context.Context, rep *report) error {
	const clients, files = 16, 64
	n := b.opts.e2ePatches
	ws := b.workspace("e2e")
	for f := range files {
		if err := writeFile(ws, fmt.Sprintf("src/mod%02d.py", f), []byte(appFile)); err != nil {
			return err
		}
	}
	d, _, err := b.startPatchd(ctx, ws)
	if err != nil {
		return err
	}
	defer d.stop(ctx)
	bodies := make([]patchBody, files)
	for f := range bodies {
		bodies[f] = newPatchBody(fmt.Sprintf("src/mod%02d.py", f))
	}
	logf("end to end: %d patches from %d clients over %d files", n, clients, files)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	t0 := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				code, body, err := d.post(ctx, bodies[i%files].make(fmt.Sprintf("e2e-%d", i)))
				if err == nil && code != 202 {
					err = fmt.Errorf("POST: %d %s", code, body)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	posted := time.Since(t0)
	if firstErr != nil {
		return firstErr
	}
	deadline := t0.Add(3 * time.Minute)
	for {
		q, err := d.queue(ctx)
		if err != nil {
			return err
		}
		if q.Applied+q.Failed >= n {
			rep.e2e = &e2eResult{patches: n, clients: clients, files: files, posted: posted, done: time.Since(t0), failed: q.Failed}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d patches applied after %s", q.Applied+q.Failed, n, time.Since(t0).Round(time.Second))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// bigPatterns are the two kinds of regex patch timed on the big file
// (benchdata.BigSource). Each flips "abc" and "xyz" so that every patch
// has a match and changes the file.
var bigPatterns = []struct {
	name    string
	pattern func(from string) string
	repl    func(to string) string
	expand  bool
}{
	{
		name:    "literal-prefixed pattern (one line named by its identifier)",
		pattern: benchdata.LiteralPattern,
		repl:    benchdata.LiteralReplacement,
	},
	{
		name:    "capture group whose prefix is on every line (as BenchmarkApply1MiB)",
		pattern: benchdata.CapturePattern,
		repl:    benchdata.CaptureReplacement,
		expand:  true,
	},
}

func (b *bench) bigFile(ctx context.Context, rep *report) error {
	content := benchdata.BigSource()
	// builds are the daemons measured: patchd, and the -baseline build in
	// a workspace of its own, its ids prefixed with "base-".
	type build struct {
		d   *daemon
		ids string
		res []bigResult
	}
	bins := []string{b.patchd}
	if b.baseline != "" {
		bins = append(bins, b.baseline)
	}
	var builds []*build
	for i, bin := range bins {
		name, ids := "big", ""
		if i > 0 {
			name, ids = "big-base", "base-"
		}
		ws := b.workspace(name)
		if err := writeFile(ws, "src/values.py", content); err != nil {
			return err
		}
		d, _, err := b.startBin(ctx, bin, ws)
		if err != nil {
			return err
		}
		defer d.stop(ctx)
		bu := &build{d: d, ids: ids, res: make([]bigResult, len(bigPatterns))}
		for k, bp := range bigPatterns {
			bu.res[k] = bigResult{name: bp.name, pattern: bp.pattern("abc")}
		}
		builds = append(builds, bu)
	}
	if len(builds) > 1 {
		logf("end to end: %d patches per pattern and build on a %.2f MiB file, the patterns and the two builds taking turns", b.opts.bigRuns, float64(len(content))/(1<<20))
	} else {
		logf("end to end: %d patches per pattern on a %.2f MiB file, the patterns taking turns", b.opts.bigRuns, float64(len(content))/(1<<20))
	}
	// The patterns take turns so that both see the same moments of a
	// shared machine, and so do the builds, patch by patch, alternating
	// which goes first. Each flips its own line between "abc" and "xyz".
	for i := range b.opts.bigRuns {
		from, to := "abc", "xyz"
		if i%2 == 1 {
			from, to = to, from
		}
		for k, bp := range bigPatterns {
			for j := range builds {
				bu := builds[(i+j)%len(builds)]
				id := fmt.Sprintf("%sbig-%d-%d", bu.ids, k, i)
				body, _ := json.Marshal(map[string]any{
					"id": id, "role": "refactor", "target_file": "src/values.py",
					"description": "Switch one value's mode",
					"patch":       map[string]any{"pattern": bp.pattern(from), "replacement": bp.repl(to), "expand": bp.expand},
				})
				cl, srv, ok, err := b.oneBig(ctx, bu.d, id, body)
				if err != nil {
					return err
				}
				if !ok {
					bu.res[k].failed++
					continue
				}
				bu.res[k].client = append(bu.res[k].client, cl)
				bu.res[k].server = append(bu.res[k].server, srv)
			}
		}
	}
	for _, bu := range builds {
		for k := range bu.res {
			slices.Sort(bu.res[k].client)
			slices.Sort(bu.res[k].server)
		}
	}
	rep.big = append(rep.big, builds[0].res...)
	if len(builds) > 1 {
		rep.bigBase = append(rep.bigBase, builds[1].res...)
	}
	return nil
}

// oneBig posts one patch and polls it every millisecond until it is
// applied or failed.
func (b *bench) oneBig(ctx context.Context, d *daemon, id string, body []byte) (client, server time.Duration, ok bool, err error) {
	t0 := time.Now()
	code, resp, err := d.post(ctx, body)
	if err != nil {
		return 0, 0, false, err
	}
	if code != 202 {
		return 0, 0, false, fmt.Errorf("POST %s: %d %s", id, code, resp)
	}
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var v struct {
			State      string    `json:"state"`
			Error      string    `json:"error"`
			ReceivedAt time.Time `json:"received_at"`
			FinishedAt time.Time `json:"finished_at"`
		}
		if err := d.getJSON(ctx, "/patches/"+id, &v); err != nil {
			return 0, 0, false, err
		}
		switch v.State {
		case "applied":
			return time.Since(t0), v.FinishedAt.Sub(v.ReceivedAt), true, nil
		case "failed":
			logf("patch %s failed: %s", id, v.Error)
			return 0, 0, false, nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, 0, false, fmt.Errorf("patch %s not applied within 30s", id)
}
