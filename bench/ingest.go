package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// point is one server at one concurrency level, measured in rounds.
type point struct {
	rounds []loadResult
}

// medianOf is the median of f over the rounds: one round disturbed by
// another tenant of the machine does not move it.
func (p *point) medianOf(f func(loadResult) float64) float64 {
	if p == nil || len(p.rounds) == 0 {
		return 0
	}
	vs := make([]float64, len(p.rounds))
	for i, r := range p.rounds {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

func (p *point) rate() float64 { return p.medianOf(loadResult.rate) }

func (p *point) p(q float64) time.Duration {
	return time.Duration(p.medianOf(func(r loadResult) float64 { return float64(r.p(q)) }))
}

func (p *point) cpuPerReq() time.Duration {
	return time.Duration(p.medianOf(func(r loadResult) float64 { return float64(r.cpuPerReq()) }))
}

func (p *point) failed() (n int) {
	for _, r := range p.rounds {
		n += r.failed
	}
	return n
}

func (p *point) maxRSS() (m int64) {
	for _, r := range p.rounds {
		m = max(m, r.maxRSS)
	}
	return m
}

// maxAnon is the largest anonymous part of the resident size sampled in
// any round.
func (p *point) maxAnon() (m int64) {
	for _, r := range p.rounds {
		m = max(m, r.maxAnon)
	}
	return m
}

// ingestRow is one concurrency level of the ingest benchmark.
type ingestRow struct {
	clients int
	ceiling *point
	flask   *point // nil: Flask not available
	patchd  *point
	// perFsync is how many journal records patchd wrote per fsync during
	// the point (submissions and the worker's updates alike).
	perFsync float64
	// baseline and basePerFsync are the same for the -baseline binary;
	// baseline is nil without one.
	baseline     *point
	basePerFsync float64
	// paired is the two builds measured side by side (nil without a
	// baseline).
	paired *pairedRow
}

// stopRun is one `patchd stop` right after an ingest round, with the
// worker's backlog still queued.
type stopRun struct {
	took   time.Duration
	queued int
}

// memRow is the resident size of one server idle and under load, each
// with its anonymous part (RssAnon: heap and stacks; the rest is file
// pages mapped in, mostly the binary's).
type memRow struct {
	name      string
	idle      int64
	idleAnon  int64
	load      int64
	loadAnon  int64
	loadLevel int
}

// ingest measures acknowledged patches per second and latency at each
// concurrency level, for the ceiling, Flask and patchd (and the -baseline
// build). Each point is measured in rounds, the servers taking turns
// within a round, so that all of them see the same machine.
func (b *bench) ingest(ctx context.Context, rep *report) error {
	o := b.opts
	ceil, err := b.startServer(ctx, "ceiling", b.ceiling)
	if err != nil {
		return err
	}
	defer ceil.stop()
	var flask *server
	if b.flask.python != "" {
		flask, err = b.startServer(ctx, "flask", b.flask.python, b.flask.app)
		if err != nil {
			logf("Flask did not start, its column is n/a: %v", err)
			b.flask.note = err.Error()
			b.flask.python = ""
			rep.flask = b.flask
		} else {
			defer flask.stop()
		}
	}
	time.Sleep(time.Second)
	memCeil := &memRow{name: "ceiling (net/http, decode only)", idle: rss(ceil.pid()), idleAnon: rssAnon(ceil.pid())}
	var memFlask *memRow
	if flask != nil {
		memFlask = &memRow{name: "Flask (threaded dev server)", idle: rss(flask.pid()), idleAnon: rssAnon(flask.pid())}
	}
	memPatchd := &memRow{name: "patchd"}

	body := newPatchBody("src/app.py")
	per := o.duration / time.Duration(o.rounds)
	loadFor := func(url, token string, clients, pid int, point string) load {
		return load{
			url: url, token: token, clients: clients, warmup: o.warmup, dur: per, rssPID: pid,
			body: func(c, n int) []byte { return body.make(patchID(point, c, n)) },
		}
	}
	// patchdRound runs one round of the point against a fresh daemon of
	// the main build or the baseline, adding its result to pt and its
	// journal records and fsyncs to *records and *batches. Only the main
	// build's rounds measure memory and the stop with a backlog.
	patchdRound := func(isMain bool, ws, ids string, clients int, pt *point, records, batches *uint64) error {
		bin, name := b.patchd, "patchd"
		if !isMain {
			bin, name = b.baseline, "the baseline"
		}
		if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
			return err
		}
		d, _, err := b.startBin(ctx, bin, ws)
		if err != nil {
			return err
		}
		if isMain && memPatchd.idle == 0 {
			time.Sleep(time.Second)
			memPatchd.idle, memPatchd.idleAnon = rss(d.pid), rssAnon(d.pid)
		}
		before, err := d.queue(ctx)
		if err != nil {
			return err
		}
		r := runLoad(ctx, loadFor("http://"+d.addr+"/webhook", d.token, clients, d.pid, ids))
		pt.rounds = append(pt.rounds, r)
		// Each round's figures, so that two builds can be compared round
		// by round (their ratio moves less than either on a shared host).
		after, err := d.queue(ctx)
		if err != nil {
			return err
		}
		logf("ingest: %d clients: %s %.0f req/s, p99 %s, %s CPU per request (queued %d at the start, %d at the end; %d finished)", clients, name, r.rate(), ms(r.p(0.99)), us(r.cpuPerReq()), before.Queued, after.Queued, (after.Applied+after.Failed)-(before.Applied+before.Failed))
		if after.Total < r.ok {
			return fmt.Errorf("%s acknowledged %d patches but holds %d", name, r.ok, after.Total)
		}
		if isMain && clients == slices.Max(o.clients) && after.Total > 0 {
			// The index of every patch stays in memory: how much each
			// costs shows in the growth over the idle size.
			grown := rss(d.pid) - memPatchd.idle
			rep.perPatch = append(rep.perPatch, float64(grown)/float64(after.Total))
			rep.stored = max(rep.stored, after.Total)
		}
		*records += after.Records - before.Records
		*batches += after.Batches - before.Batches
		t0 := time.Now()
		if err := d.stop(ctx); err != nil {
			return err
		}
		if isMain {
			rep.stops = append(rep.stops, stopRun{took: time.Since(t0), queued: after.Queued})
		}
		b.settle()
		return nil
	}
	for _, clients := range o.clients {
		b.awaitIdle(ctx, rep, fmt.Sprintf("ingest %d", clients))
		row := ingestRow{clients: clients, ceiling: &point{}, patchd: &point{}}
		if flask != nil {
			row.flask = &point{}
		}
		if b.baseline != "" {
			row.baseline = &point{}
		}
		var records, batches, baseRecords, baseBatches uint64
		for round := range o.rounds {
			logf("ingest: %d clients, round %d of %d", clients, round+1, o.rounds)
			tag := fmt.Sprintf("%d-%d", clients, round)
			row.ceiling.rounds = append(row.ceiling.rounds,
				runLoad(ctx, loadFor("http://"+ceil.addr+"/webhook", "", clients, ceil.pid(), "c"+tag)))
			if flask != nil {
				row.flask.rounds = append(row.flask.rounds,
					runLoad(ctx, loadFor("http://"+flask.addr+"/webhook", "", clients, flask.pid(), "f"+tag)))
			}

			// A fresh daemon per round: no backlog from the last round
			// for its worker, the same conditions every time. With a
			// baseline, the two builds take turns right after each other,
			// alternating which goes first.
			turns := []func() error{func() error {
				return patchdRound(true, b.workspace("ingest"+tag), "p"+tag, clients, row.patchd, &records, &batches)
			}}
			if b.baseline != "" {
				base := func() error {
					return patchdRound(false, b.workspace("ingest-base"+tag), "b"+tag, clients, row.baseline, &baseRecords, &baseBatches)
				}
				if round%2 == 0 {
					turns = append(turns, base)
				} else {
					turns = append([]func() error{base}, turns...)
				}
			}
			for _, turn := range turns {
				if err := turn(); err != nil {
					return err
				}
			}
		}
		if b.baseline != "" {
			if err := b.pairedRounds(ctx, &row, clients, loadFor); err != nil {
				return err
			}
		}
		if batches > 0 {
			row.perFsync = float64(records) / float64(batches)
		}
		if baseBatches > 0 {
			row.basePerFsync = float64(baseRecords) / float64(baseBatches)
		}
		if clients == slices.Max(o.clients) {
			memPatchd.load, memPatchd.loadAnon, memPatchd.loadLevel = row.patchd.maxRSS(), row.patchd.maxAnon(), clients
			memCeil.load, memCeil.loadAnon, memCeil.loadLevel = row.ceiling.maxRSS(), row.ceiling.maxAnon(), clients
			if memFlask != nil {
				memFlask.load, memFlask.loadAnon, memFlask.loadLevel = row.flask.maxRSS(), row.flask.maxAnon(), clients
			}
		}
		rep.ingest = append(rep.ingest, row)
	}
	rep.mem = append(rep.mem, memPatchd, memCeil)
	if memFlask != nil {
		rep.mem = append(rep.mem, memFlask)
	}
	return nil
}

// writeFile writes rel inside ws, creating its directory.
func writeFile(ws, rel string, data []byte) error {
	p := filepath.Join(ws, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// pairedRounds measures the main build and the baseline at the same
// time: both daemons started afresh, each under its own load of clients,
// the two loads running together, in o.rounds rounds alternating which
// daemon starts and which load starts first. Taking turns, two builds
// still see the machine at two moments, and on a shared host a round's
// CPU per request moves by a fifth from one moment to the next; side by
// side they share every moment, so their ratio in a round is what
// differs between the builds. Each gets about half the machine, so these
// figures compare the two builds with each other only.
func (b *bench) pairedRounds(ctx context.Context, row *ingestRow, clients int, loadFor func(url, token string, clients, pid int, point string) load) error {
	pr := &pairedRow{clients: clients}
	for round := range b.opts.rounds {
		tag := fmt.Sprintf("%d-%d", clients, round)
		bins := []string{b.patchd, b.baseline}
		if round%2 == 1 {
			bins = []string{b.baseline, b.patchd}
		}
		var ds []*daemon
		for i, bin := range bins {
			ws := b.workspace(fmt.Sprintf("paired%d-%s", i, tag))
			if err := writeFile(ws, "src/app.py", []byte(appFile)); err != nil {
				return err
			}
			d, _, err := b.startBin(ctx, bin, ws)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		res := make([]loadResult, len(ds))
		done := make(chan struct{})
		for i, d := range ds {
			go func() {
				defer func() { done <- struct{}{} }()
				res[i] = runLoad(ctx, loadFor("http://"+d.addr+"/webhook", d.token, clients, d.pid, fmt.Sprintf("q%d-%s", i, tag)))
			}()
		}
		for range ds {
			<-done
		}
		for _, d := range ds {
			if err := d.stop(ctx); err != nil {
				return err
			}
		}
		main, base := res[0], res[1]
		if round%2 == 1 {
			main, base = base, main
		}
		pr.main.rounds = append(pr.main.rounds, main)
		pr.base.rounds = append(pr.base.rounds, base)
		logf("ingest, side by side: %d clients: patchd %.0f req/s, %s CPU per request; the baseline %.0f req/s, %s", clients, main.rate(), us(main.cpuPerReq()), base.rate(), us(base.cpuPerReq()))
		b.settle()
	}
	row.paired = pr
	return nil
}

// pairedRow is one concurrency level measured side by side.
type pairedRow struct {
	clients    int
	main, base point
}

// ratios are the rounds' CPU per request of the main build over the
// baseline's, sorted.
func (p *pairedRow) ratios() []float64 {
	var rs []float64
	for i, m := range p.main.rounds {
		if c := p.base.rounds[i].cpuPerReq(); c > 0 {
			rs = append(rs, float64(m.cpuPerReq())/float64(c))
		}
	}
	slices.Sort(rs)
	return rs
}
