// Command bench runs patchd's benchmarks and writes docs/BENCHMARKS.md.
//
// Every figure is measured in the same run, side by side with references:
// a bare net/http server that decodes the webhook body and stores nothing
// (bench/ceiling, the ceiling), and where it applies a minimal Flask app
// shaped like the seed's webhook (bench/flask_app.py, on Flask's threaded
// development server). All servers are separate processes on 127.0.0.1;
// the load generator is this program.
//
// Run it from the repository root:
//
//	go run ./bench
//
// It builds patchd (without -race) and the ceiling into a temporary
// directory, installs Debian's python3-flask if Flask is missing and it can
// (root and apt-get), runs everything in fresh temporary workspaces and
// removes them afterwards. Every load loop ends by itself.
//
// The history step (bench/history.go) builds histories of -history
// patches through the store's API (internal/histgen) and measures start,
// takeover, restart, memory and reads of a daemon on each:
//
//	go run ./bench -only history -history 0,100000,1000000
//
// To compare an optimisation with the build before it, measure both in the
// same run: the machine's noise between runs is larger than most changes.
// Build the older commit's binary and pass it with -baseline:
//
//	git worktree add /tmp/old <commit>
//	(cd /tmp/old && go build -o /tmp/patchd-old ./cmd/patchd)
//	go run ./bench -baseline /tmp/patchd-old
//
// Every ingest round then also runs the same load against a fresh daemon of
// the baseline, right before or after patchd's own turn (the two builds
// alternate which goes first), and the 1 MiB single patches alternate
// between the two daemons patch by patch. The ingest and 1 MiB tables get a
// "patchd baseline" row next to each of patchd's; the goals are the main
// build's alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	out        string
	tmpParent  string
	warmup     time.Duration
	duration   time.Duration
	clients    []int
	rounds     int
	e2ePatches int
	bigRuns    int
	startRuns  int
	takeovers  int
	restarts   int
	noFlask    bool
	noGoBench  bool
	keep       bool
	waitIdle   time.Duration
	patchdBin  string
	baseline   string
	only       map[string]bool

	// The long-history step (bench/history.go).
	histSizes    []int
	histTimeout  time.Duration
	histRuns     int
	histRestarts int
	histGets     int
	histLoad     time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "docs/BENCHMARKS.md", "report to (re)write, relative to the repository root")
	fs.StringVar(&o.tmpParent, "dir", "", "where to create the temporary workspaces (default: the system temp dir); its file system's fsync is what is measured")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up before each round of an ingest point (not counted)")
	fs.DurationVar(&o.duration, "duration", 7500*time.Millisecond, "measured time of each ingest point, split over its rounds")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds per ingest point; its figures are the medians of the rounds")
	clients := fs.String("clients", "1,16,64", "concurrent clients of the ingest points, comma-separated")
	fs.IntVar(&o.e2ePatches, "e2e-patches", 1000, "patches in the end-to-end run")
	fs.IntVar(&o.bigRuns, "big-runs", 50, "single patches on a 1 MiB file, per pattern")
	fs.IntVar(&o.startRuns, "start-runs", 20, "patchd start runs (each in a fresh workspace)")
	fs.IntVar(&o.takeovers, "takeovers", 10, "standby takeovers after kill -9")
	fs.IntVar(&o.restarts, "restarts", 20, "patchd restarts under load")
	fs.BoolVar(&o.noFlask, "no-flask", false, "skip the Flask reference")
	fs.StringVar(&o.patchdBin, "patchd-bin", "", "measure this patchd binary instead of building one (to compare builds)")
	fs.StringVar(&o.baseline, "baseline", "", "also measure this patchd binary (an older build) in the same ingest rounds and 1 MiB patch runs, as extra rows")
	only := fs.String("only", "", "run only these steps, comma-separated: disk, ingest, gateway, e2e, startup, takeover, restarts, history, go")
	history := fs.String("history", "0,100000,1000000", "patches in the histories of the history step, comma-separated (each built through the store API)")
	fs.DurationVar(&o.histTimeout, "history-timeout", time.Minute, "history step: cut each start, takeover, restart and series of GETs after this long and report it timed out")
	fs.IntVar(&o.histRuns, "history-runs", 3, "history step: starts and takeovers per size")
	fs.IntVar(&o.histRestarts, "history-restarts", 5, "history step: restarts under load per size")
	fs.IntVar(&o.histGets, "history-gets", 200, "history step: requests of each kind of GET per size")
	fs.DurationVar(&o.histLoad, "history-load", 5*time.Second, "history step: how long the 64 clients of ingest send, for the resident size under load")
	fs.DurationVar(&o.waitIdle, "wait-idle", 2*time.Minute, "before the run and before each ingest level, wait up to this long for the machine to be 90% idle (0: do not wait)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (workspaces, logs) for inspection")
	fs.BoolVar(&o.noGoBench, "no-go-bench", false, "skip the go test benchmarks of internal/store, internal/patch and internal/worker")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.rounds < 1 || o.duration < time.Duration(o.rounds)*100*time.Millisecond {
		return o, fmt.Errorf("-rounds %d and -duration %s: want at least one round of 100ms", o.rounds, o.duration)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			o.only[strings.TrimSpace(s)] = true
		}
	}
	for _, f := range strings.Split(*history, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 100_000_000 {
			return o, fmt.Errorf("-history: %q is not a number of patches from 0 to 100000000", f)
		}
		o.histSizes = append(o.histSizes, n)
	}
	if o.histRuns < 1 || o.histRestarts < 1 || o.histGets < 1 || o.histTimeout <= 0 || o.histLoad <= 0 {
		return o, errors.New("-history-runs, -history-restarts, -history-gets, -history-timeout and -history-load must be positive")
	}
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return o, fmt.Errorf("-clients: %q is not a number of clients from 1 to 1024", f)
		}
		o.clients = append(o.clients, n)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == flag.ErrHelp {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(o.tmpParent, "patchd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	b := &bench{opts: o, root: root, tmp: tmp, procs: &procSet{}}
	// Whatever is still running when we leave, however we leave, goes.
	defer b.procs.killAll()

	logf("building patchd and the ceiling in %s", tmp)
	if err := b.build(ctx); err != nil {
		return err
	}
	b.machine = readMachine(root, tmp)
	if !o.noFlask {
		b.flask = findFlask(ctx, tmp)
	} else {
		b.flask = flaskEnv{note: "skipped (-no-flask)"}
	}
	if b.flask.python == "" {
		logf("Flask: n/a: %s", b.flask.note)
	}

	rep := &report{machine: b.machine, flask: b.flask, opts: o, date: began, baseLabel: b.baseLabel}
	b.awaitIdle(ctx, rep, "")
	rep.loadBefore = loadAvg()
	steps := []struct {
		key, name string
		fn        func(context.Context, *report) error
	}{
		{"disk", "disk", func(ctx context.Context, rep *report) error { return b.probeDisk(ctx, rep, "before the benchmarks") }},
		{"ingest", "ingest", b.ingest},
		{"gateway", "gateway ingest (NATS JetStream)", b.gatewayIngest},
		{"e2e", "end to end", b.endToEnd},
		{"startup", "start-up", b.startup},
		{"takeover", "standby takeover", b.takeover},
		{"restarts", "restarts under load", b.restartsUnderLoad},
		{"history", "long histories", b.histories},
		{"disk", "disk", func(ctx context.Context, rep *report) error { return b.probeDisk(ctx, rep, "after them") }},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if o.only != nil && !o.only[s.key] {
			continue
		}
		if s.key != "ingest" { // ingest waits before each of its levels
			b.awaitIdle(ctx, rep, s.key)
		}
		logf("== %s", s.name)
		if err := s.fn(ctx, rep); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.procs.killAll()
		b.settle()
	}
	if !o.noGoBench && (o.only == nil || o.only["go"]) {
		logf("== go test benchmarks")
		rep.goBench, rep.goBenchErr = b.goBenchmarks(ctx)
	}
	rep.took = time.Since(began)
	rep.loadAfter = loadAvg()

	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	fmt.Print(rep.summary())
	logf("wrote %s in %s", out, rep.took.Round(time.Second))
	return nil
}
