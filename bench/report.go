package main

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"
)

// report collects the figures and renders docs/BENCHMARKS.md.
type report struct {
	machine machine
	flask   flaskEnv
	opts    options
	date    time.Time
	took    time.Duration
	// loadBefore and loadAfter are the load averages around the run.
	loadBefore, loadAfter string
	// idle is the machine's idle CPU share seen just before each
	// measurement, by name.
	idle []idleSeen

	ingest   []ingestRow
	mem      []*memRow
	e2e      *e2eResult
	big      []bigResult
	startup  []startupResult
	takeover *takeoverResult
	restart  *restartResult
	stops    []stopRun
	fsync    []fsyncProbe
	history  []*histRow
	gateway  []gatewayRow
	// perPatch is patchd's resident growth per stored patch at the end
	// of each round with the most clients; stored the most patches held.
	perPatch []float64
	stored   int

	// baseLabel names the -baseline build, "" without one; bigBase is big
	// for that build, in the same order.
	baseLabel string
	bigBase   []bigResult

	goBench    []string
	goBenchErr error
}

// notes is the hand-written part of the report: what the profiles showed
// and what changed because of them. It is kept in bench/notes.md so that
// regenerating the report keeps it.
//
//go:embed notes.md
var notes string

// seedBootSeconds is the seed's boot script's start-up time as the seed
// document reports it; that script cannot run here.
const seedBootSeconds = 2.0

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "–"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func us(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func mib(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// withAnon is a resident size with its anonymous part beside it.
func withAnon(rss, anon int64) string {
	if rss == 0 || anon == 0 {
		return mib(rss)
	}
	return fmt.Sprintf("%s (anonymous %s)", mib(rss), mib(anon))
}

func median(sorted []time.Duration) time.Duration { return percentile(sorted, 0.5) }

func yes(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// idleSeen is the idle share of the machine before one measurement.
type idleSeen struct {
	what  string
	share float64
}

// goal is one line of the goals table.
type goal struct {
	what, target, got string
	met               bool
}

func (r *report) goals() []goal {
	var gs []goal
	for _, row := range r.ingest {
		if row.clients >= 32 && row.ceiling.rate() > 0 {
			ratio := row.patchd.rate() / row.ceiling.rate()
			gs = append(gs, goal{
				what:   fmt.Sprintf("ingest at %d clients: patchd req/s vs the ceiling", row.clients),
				target: "≥ 25%",
				got:    fmt.Sprintf("%.0f%% (%.0f vs %.0f req/s)", 100*ratio, row.patchd.rate(), row.ceiling.rate()),
				met:    ratio >= 0.25,
			})
		}
	}
	for _, row := range r.ingest {
		if row.clients == 16 {
			p99 := row.patchd.p(0.99)
			gs = append(gs, goal{what: "ingest at 16 clients: patchd p99 latency", target: "< 10 ms", got: ms(p99), met: p99 < 10*time.Millisecond && p99 > 0})
		}
	}
	for _, b := range r.big {
		p50 := median(b.client)
		gs = append(gs, goal{what: "one regex patch on a 1 MiB file, POST to applied, p50: " + b.name, target: "< 20 ms", got: ms(p50), met: p50 > 0 && p50 < 20*time.Millisecond && b.failed == 0})
	}
	for _, s := range r.startup {
		if s.name == "patchd" {
			m := median(s.runs)
			gs = append(gs, goal{what: "`patchd start` to healthy, median", target: fmt.Sprintf("< 100 ms (seed's boot script: ~%.0f s)", seedBootSeconds), got: ms(m), met: m > 0 && m < 100*time.Millisecond})
		}
	}
	if t := r.takeover; t != nil {
		m := median(t.runs)
		gs = append(gs, goal{what: "standby takeover after kill -9, median", target: "< 100 ms", got: ms(m), met: m > 0 && m < 100*time.Millisecond})
	}
	if rs := r.restart; rs != nil {
		gs = append(gs, goal{
			what:   fmt.Sprintf("failed requests during %d `patchd restart`s under load", rs.restarts),
			target: "0",
			got:    fmt.Sprintf("%d of %d (restarts failed: %d)", rs.load.failed, rs.load.ok+rs.load.failed, rs.failedRestarts),
			met:    rs.load.failed == 0 && rs.failedRestarts == 0 && rs.load.ok > 0,
		})
	}
	for _, m := range r.mem {
		if m.name == "patchd" {
			// The goal is on VmRSS, as issue 5 set it; the anonymous part
			// beside it is what patchd allocates, the rest the binary's
			// pages mapped in (bench/notes.md, "Idle memory and the
			// binary's size").
			gs = append(gs, goal{what: "patchd resident memory, idle after start", target: "< 20 MiB", got: withAnon(m.idle, m.idleAnon), met: m.idle > 0 && m.idle < 20<<20})
		}
	}
	// The long-history goals, at the longest history measured.
	var longest *histRow
	for _, h := range r.history {
		if longest == nil || h.size > longest.size {
			longest = h
		}
	}
	if longest != nil && longest.size > 0 {
		for _, g := range r.historyGoals(longest) {
			g.what = "history of " + thousands(longest.size) + " patches: " + g.what
			gs = append(gs, g)
		}
	}
	return gs
}

func (r *report) goalTable(sb *strings.Builder) {
	sb.WriteString("| figure | goal | measured | |\n| --- | --- | --- | --- |\n")
	for _, g := range r.goals() {
		fmt.Fprintf(sb, "| %s | %s | %s | %s |\n", g.what, g.target, g.got, yes(g.met))
	}
}

// pairedTable is the main build and the baseline measured side by side
// (pairedRounds), when there is a baseline.
func (r *report) pairedTable(sb *strings.Builder) {
	var rows []*pairedRow
	for _, row := range r.ingest {
		if row.paired != nil {
			rows = append(rows, row.paired)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(sb, "\n**patchd and %s side by side.** Taking turns, the two builds\nstill see the machine at two moments, and here a round's CPU per request\nmoves by a fifth from one moment to the next. So each level is measured\nagain in %d rounds with both daemons started afresh and each under its own\nload of that many clients, the two loads running at the same time (the\nbuild started first alternating): each round's ratio of CPU per request\nis what differs between the builds. Each has about half the machine, so\ncompare these rows with each other only.\n\n", r.baseName(), r.opts.rounds)
	sb.WriteString("| clients | CPU per request, patchd / baseline: median of the rounds' ratios (range) | CPU per request, patchd / baseline (medians) | req/s, patchd / baseline (medians) |\n| ---: | ---: | ---: | ---: |\n")
	for _, p := range rows {
		rs := p.ratios()
		if len(rs) == 0 {
			continue
		}
		med := rs[len(rs)/2]
		if len(rs)%2 == 0 {
			med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
		}
		fmt.Fprintf(sb, "| %d | %.2f (%.2f–%.2f) | %s / %s | %.0f / %.0f |\n", p.clients, med, rs[0], rs[len(rs)-1], us(p.main.cpuPerReq()), us(p.base.cpuPerReq()), p.main.rate(), p.base.rate())
	}
}

func (r *report) ingestTable(sb *strings.Builder) {
	sb.WriteString("| clients | server | acknowledged req/s | p50 | p99 | failed | vs ceiling | server CPU per request |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.ingest {
		line := func(name string, l *point, extra string) {
			if l == nil {
				fmt.Fprintf(sb, "| %d | %s | n/a | | | | | |\n", row.clients, name)
				return
			}
			vs := ""
			if row.ceiling.rate() > 0 {
				vs = fmt.Sprintf("%.0f%%", 100*l.rate()/row.ceiling.rate())
			}
			fmt.Fprintf(sb, "| %d | %s%s | %.0f | %s | %s | %d | %s | %s |\n", row.clients, name, extra, l.rate(), ms(l.p(0.5)), ms(l.p(0.99)), l.failed(), vs, us(l.cpuPerReq()))
		}
		line("**patchd**", row.patchd, fmt.Sprintf(" (%.1f records per commit)", row.perFsync))
		if row.baseline != nil {
			line(r.baseName(), row.baseline, fmt.Sprintf(" (%.1f records per commit)", row.basePerFsync))
		}
		line("ceiling", row.ceiling, "")
		if r.flask.python != "" {
			line("Flask", row.flask, "")
		} else {
			line("Flask", nil, "")
		}
	}
}

// baseName is the name of the -baseline build's rows.
func (r *report) baseName() string { return "patchd baseline (" + r.baseLabel + ")" }

func (r *report) markdown() string {
	var sb strings.Builder
	m := r.machine
	fmt.Fprintf(&sb, "# Benchmarks\n\n")
	fmt.Fprintf(&sb, "Written by `go run ./bench` on %s; the run took %s. Run it\nagain to replace every figure below; only the notes at the end are\nwritten by hand (in `bench/notes.md`).\n\n",
		r.date.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))

	sb.WriteString("## Machine\n\n| | |\n| --- | --- |\n")
	fmt.Fprintf(&sb, "| CPU | %s, %d cores |\n| memory | %.1f GiB |\n| kernel | %s |\n| Go | %s |\n| file system of the workspaces | %s |\n",
		m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go, m.FS)
	if r.opts.patchdBin != "" {
		fmt.Fprintf(&sb, "| patchd measured | the binary given with -patchd-bin |\n")
	} else {
		fmt.Fprintf(&sb, "| patchd measured | built from commit %s |\n", m.Commit)
	}
	if r.baseLabel != "" {
		fmt.Fprintf(&sb, "| patchd baseline, measured alongside | `%s` (given with -baseline): %s |\n", r.opts.baseline, r.baseLabel)
	}
	fmt.Fprintf(&sb, "| load average (1, 5, 15 min) | %s before the run, %s after |\n", r.loadBefore, r.loadAfter)
	idle := make([]string, len(r.idle))
	for i, v := range r.idle {
		idle[i] = fmt.Sprintf("%s %.0f%%", v.what, 100*v.share)
	}
	fmt.Fprintf(&sb, "| CPU idle just before each measurement (others' load) | %s |\n", strings.Join(idle, ", "))
	if r.flask.python != "" {
		fmt.Fprintf(&sb, "| Flask reference | %s |\n", r.flask.version)
	} else {
		fmt.Fprintf(&sb, "| Flask reference | n/a: %s |\n", r.flask.note)
	}
	fmt.Fprintf(&sb, "\nThe load generator, the server it measures and (for patchd) its worker all\nrun on these %d cores at once: every req/s figure is shared with the\nclient's own CPU use, for the references as much as for patchd. The\nmachine is shared with other work: the command waits (up to -wait-idle)\nfor it to be 90%% idle before the run and before each ingest level, and\ntakes medians of rounds, but figures still move between runs, most of all\nthe tails; compare the columns of one run, and the CPU per request, which\nmoves least.\n\n", m.Cores)

	if len(r.fsync) > 0 {
		sb.WriteString("The disk under the workspaces, alone: 512-byte records committed one\nafter the other for 2 s, before and after the benchmarks, appended and\nfsynced (the file grows each time, so each fsync also commits metadata),\nor written over zeros written ahead and fdatasynced (as patchd's journal\ndoes). A durable acknowledgement cannot be faster than the second, and\nwhen the disk is shared its tail shows up in every durable figure below.\n\n")
		sb.WriteString("| commit | when | count | p50 | p99 | p99.9 | max |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, p := range r.fsync {
			if len(p.lat) == 0 {
				continue
			}
			fmt.Fprintf(&sb, "| %s | %s | %d | %s | %s | %s | %s |\n", p.mode, p.when, len(p.lat), ms(median(p.lat)), ms(percentile(p.lat, 0.99)), ms(percentile(p.lat, 0.999)), ms(p.lat[len(p.lat)-1]))
		}
		sb.WriteString("\n")
	}

	sb.WriteString("## Goals\n\n")
	r.goalTable(&sb)

	sb.WriteString("\n## Ingest\n\n")
	servers := "three"
	if r.baseLabel != "" {
		servers = "four"
	}
	fmt.Fprintf(&sb, "Patches acknowledged per second and the latency of each POST /webhook at\n%s concurrent clients. Each client keeps one keep-alive connection and\nsends its next patch as soon as the last one is answered; every patch has\na unique id and is a ~450-byte block with description and metadata.\nEach point is measured for %s in %d rounds (each after a %s warm-up\nthat is not counted); in a round the %s servers take turns, so all\n%s see the same machine, and every figure is the median of the rounds.\n\n",
		joinInts(r.opts.clients), r.opts.duration, r.opts.rounds, r.opts.warmup, servers, servers)
	sb.WriteString("- **patchd**: a 202 means durable: the record is in the journal and the\n  journal synced (fdatasync over space written ahead; group commit).\n  Bearer token checked, the block fully validated (its pattern parsed,\n  the path checked in the workspace). A fresh daemon every round; its worker applies the patches\n  to `src/app.py` meanwhile, on the same cores.\n")
	sb.WriteString("- **ceiling**: `bench/ceiling`, a bare `net/http` server whose handler decodes\n  the JSON body into the block's struct and answers 202. Stores nothing.\n")
	sb.WriteString("- **Flask**: `bench/flask_app.py`, shaped like the seed's webhook (required\n  fields checked in order, the seed's answer shape, no auth), on Flask's\n  built-in threaded development server (`make_server(..., threaded=True)`,\n  what `app.run(threaded=True)` runs) as the seed did, request log off.\n  Stores nothing either: the seed's real webhook did more per request.\n")
	if r.baseLabel != "" {
		fmt.Fprintf(&sb, "- **%s**: the binary given\n  with -baseline, measured exactly as patchd (a fresh daemon every\n  round, the same load, its own ids); in each round it runs right before\n  or right after patchd, the two builds alternating which goes first.\n  Compare the two rows of a level with each other rather than with\n  another run.\n", r.baseName())
	}
	sb.WriteString("\n")
	r.ingestTable(&sb)
	r.pairedTable(&sb)

	sb.WriteString("\n## End to end\n\n")
	if e := r.e2e; e != nil {
		fmt.Fprintf(&sb, "%d patches POSTed by %d clients, spread over %d small files, from the\nfirst POST until `/health` counts them all applied:\n\n", e.patches, e.clients, e.files)
		sb.WriteString("| patches | all acknowledged after | all applied after | applied per second | failed |\n| ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(&sb, "| %d | %s | %s | %.0f | %d |\n\n", e.patches, ms(e.posted), ms(e.done), e.rate(), e.failed)
		sb.WriteString("The worker applies one patch at a time, each durably: the patch marked\n`applying` with the old content (a journal commit; content over 64 KiB\ngoes to a blob file first, with its own fsyncs) while the new content is\nwritten to a temporary file and fsynced, then renamed into place\n(directory fsync), the patch marked `applied` with its diff (a journal\ncommit), a summary written (not fsynced). Journal commits are shared\nwith every record written at the same moment (group commit).\n\n")
	}
	if len(r.big) > 0 {
		fmt.Fprintf(&sb, "One patch at a time on a 1 MiB source file (`src/values.py`, ~13,000\nlines), %d times per pattern: from sending the POST until polling\n`GET /patches/{id}` (every 1 ms) sees `applied`. \"in the daemon\" is the\npatch's own `received_at` → `finished_at`. p99 is the nearest-rank\npercentile: of %d samples, the largest.\n\n", r.opts.bigRuns, r.opts.bigRuns)
		sb.WriteString("| pattern | p50 | p99 | in the daemon, p50 | in the daemon, p99 | failed |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		bigLine := func(prefix string, b bigResult) {
			fmt.Fprintf(&sb, "| %s%s: `%s` | %s | %s | %s | %s | %d |\n", prefix, b.name, b.pattern,
				ms(median(b.client)), ms(percentile(b.client, 0.99)), ms(median(b.server)), ms(percentile(b.server, 0.99)), b.failed)
		}
		for i, b := range r.big {
			if len(r.bigBase) == 0 {
				bigLine("", b)
				continue
			}
			bigLine("**patchd**, ", b)
			if i < len(r.bigBase) {
				bigLine(r.baseName()+", ", r.bigBase[i])
			}
		}
		if len(r.bigBase) > 0 {
			fmt.Fprintf(&sb, "\nThe baseline ran in a daemon and workspace of its own, the two builds\ntaking turns patch by patch (alternating which goes first).\n")
		}
	}

	sb.WriteString("\n## Lifecycle\n\n")
	if len(r.startup) > 0 {
		sb.WriteString("Start-up, from launch to a healthy `/health`:\n\n| server | measured | runs | median | min | max |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.startup {
			fmt.Fprintf(&sb, "| %s | %s | %d | %s | %s | %s |\n", s.name, s.how, len(s.runs), ms(median(s.runs)), ms(s.runs[0]), ms(s.runs[len(s.runs)-1]))
		}
		fmt.Fprintf(&sb, "| seed's boot script | as the seed document reports it (it cannot run here: PID file, `lsof`, a fixed sleep, then `curl /health`) | | ~%.0f s | | |\n\n", seedBootSeconds)
	}
	if t := r.takeover; t != nil {
		fmt.Fprintf(&sb, "Standby takeover: `patchd run --port %d` active and a second `patchd run`\nwith the same flags standing by (it waits for the instance lock, unbound);\n`kill -9` of the active one, then `/health` polled on the same port over\nnew connections until the standby's pid answers. %d takeovers in a row\n(each standby becomes the active one for the next):\n\n", t.port, len(t.runs))
		fmt.Fprintf(&sb, "| takeovers | median | min | max |\n| ---: | ---: | ---: | ---: |\n| %d | %s | %s | %s |\n\n", len(t.runs), ms(median(t.runs)), ms(t.runs[0]), ms(t.runs[len(t.runs)-1]))
	}
	if rs := r.restart; rs != nil {
		fmt.Fprintf(&sb, "Restarts under load: %d clients keep POSTing patches (keep-alive, no\nretries: every error counts) while `patchd restart` runs %d times in a\nrow; each restart waits until the new daemon has served requests before\nthe next.\n\n", rs.clients, rs.restarts)
		sb.WriteString("| restarts | failed restarts | restart took (median) | requests | failed requests | acknowledged | stored after | daemons |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(&sb, "| %d | %d | %s | %d | %d | %d | %d | %d |\n", rs.restarts, rs.failedRestarts, ms(median(rs.took)), rs.load.ok+rs.load.failed, rs.load.failed, rs.load.ok, rs.stored, rs.pids)
		if len(rs.load.errs) > 0 {
			fmt.Fprintf(&sb, "\nFirst failures: %s\n", "`"+strings.Join(rs.load.errs, "`, `")+"`")
		}
	}

	if len(r.stops) > 0 {
		var took []time.Duration
		most := 0
		for _, s := range r.stops {
			took = append(took, s.took)
			most = max(most, s.queued)
		}
		slices.Sort(took)
		fmt.Fprintf(&sb, "\nStop with a backlog: `patchd stop` right after each ingest round, while\nthe worker still has up to %d patches queued (they stay queued for the\nnext start): %d stops, median %s, max %s.\n", most, len(took), ms(median(took)), ms(took[len(took)-1]))
	}

	r.memorySection(&sb)

	if len(r.perPatch) > 0 {
		v := slices.Clone(r.perPatch)
		slices.Sort(v)
		fmt.Fprintf(&sb, "\npatchd keeps the record of every patch it holds in memory (the bodies\nstay on disk): at the end of the rounds with the most clients, holding up\nto %d patches, its resident size had grown by a median %.1f KiB per\nstored patch over the idle size (GC slack included).\n", r.stored, v[len(v)/2]/1024)
	}

	r.gatewaySection(&sb)
	r.historySection(&sb)

	sb.WriteString("\n## Go benchmarks\n\nThe store's, the patch package's and the worker's own benchmarks, from this run:\n\n    go test -run=^$ -bench=. ./internal/store ./internal/patch ./internal/worker\n\n")
	if len(r.goBench) > 0 {
		sb.WriteString("```\n" + strings.Join(r.goBench, "\n") + "\n```\n")
	}
	if r.goBenchErr != nil {
		fmt.Fprintf(&sb, "\n(failed: %v)\n", r.goBenchErr)
	} else if len(r.goBench) == 0 {
		sb.WriteString("(skipped in this run)\n")
	}
	sb.WriteString("\n`BenchmarkSubmitParallel` submits through the store alone (no HTTP) with\nreal fsyncs; `records/batch` is how many records share one fsync.\n`BenchmarkSubmitSerial` is one client: one fsync per record.\n")

	sb.WriteString("\n## Running\n\n    go run ./bench               # everything, rewrites docs/BENCHMARKS.md\n    go run ./bench -h            # durations, client counts, repeats\n    go run ./bench -only history -history 0,100000,1000000\n                                 # only the long histories\n\n")
	sb.WriteString("It needs Go and, for the Flask column, `python3` with Flask: if\n`python3 -c 'import flask'` fails it runs `apt-get update` and\n`apt-get install -y python3-flask` when it is root, and otherwise leaves\nthe column as n/a and says why. Everything runs on 127.0.0.1 in temporary\ndirectories that are removed afterwards (`-dir` picks their parent, and so\nthe disk whose fsync is measured).\n")

	if strings.TrimSpace(notes) != "" {
		sb.WriteString("\n" + strings.TrimSpace(notes) + "\n")
	}
	return sb.String()
}

// memorySection is the table of resident sizes, each with its anonymous
// part.
func (r *report) memorySection(sb *strings.Builder) {
	sb.WriteString("\n## Memory\n\nResident size (`VmRSS` of the server process): idle, a second after\nstart-up, and the largest sample (every 100 ms) during the ingest point with\nthe most clients, each with its anonymous part (RssAnon: heap and stacks)\nbeside it. The rest is file pages mapped in, nearly all the binary's: the\nkernel can drop them and read them again, and every process running the\nsame binary shares them. How much of the binary is mapped in right after\nstart follows its size more than what the server does (see \"Idle memory\nand the binary's size\" in the notes).\n\n| server | idle | under load | clients |\n| --- | ---: | ---: | ---: |\n")
	for _, m := range r.mem {
		fmt.Fprintf(sb, "| %s | %s | %s | %d |\n", m.name, withAnon(m.idle, m.idleAnon), withAnon(m.load, m.loadAnon), m.loadLevel)
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	if len(s) > 1 {
		return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
	}
	return strings.Join(s, "")
}

// summary is what the command prints when it is done.
func (r *report) summary() string {
	var sb strings.Builder
	sb.WriteString("\nGoals\n\n")
	r.goalTable(&sb)
	sb.WriteString("\nIngest\n\n")
	r.ingestTable(&sb)
	r.pairedTable(&sb)
	r.gatewaySection(&sb)
	return sb.String()
}
