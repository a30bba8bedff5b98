// Package metrics is patchd's Prometheus instrumentation, on a registry of
// its own per daemon (never the client library's global one): the HTTP
// requests the server answered (RequestObserver), the patch counts, queue
// depth and journal size read from api.Status at each scrape (O(1): the
// store keeps the counts), how long patches took to apply (from the
// service's events), build information, and the Go and process
// collectors.
//
// It is the only patchd package that imports the Prometheus client
// (internal/deptest holds that): the server takes its handler and its
// observer as plain net/http and Go interfaces, and the store, the worker
// and the workspace know nothing of it.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/patchd/patchd/internal/api"
)

// Options configures Metrics.
type Options struct {
	// Service is where the patch counts (Status) and the events that time
	// each patch's apply (Subscribe) come from; nil: neither is exported.
	Service api.Service
	// Version is patchd's version, a label of patchd_build_info.
	Version string
	// Logger receives errors of a scrape; nil: none.
	Logger *slog.Logger
}

// Metrics holds one daemon's registry and its metrics. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	svc      api.Service
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// applied and failed observe patchd_patch_apply_duration_seconds.
	applied, failed prometheus.Observer

	// routes maps a route pattern to its pre-bound metrics; it is
	// replaced, never changed, when a pattern is seen first (routesMu).
	routes   atomic.Pointer[map[string]*route]
	routesMu sync.Mutex
}

// route is one handler's pre-bound metrics: the request duration, and a
// counter per status code, so that a request costs no label lookup.
type route struct {
	name  string
	dur   prometheus.Observer
	codes atomic.Pointer[map[int]prometheus.Counter]
	mu    sync.Mutex
}

// noRoute is the handler label of a request no route matched (404, 405)
// or that was refused before routing (the Host and Origin guard).
const noRoute = "none"

// New returns the metrics of one daemon, registered on a new registry.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), svc: opts.Service, log: opts.Logger}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchd_http_requests_total",
		Help: "HTTP requests answered, by route pattern (handler; none when no route matched) and status code.",
	}, []string{"handler", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "patchd_http_request_duration_seconds",
		Help:    "Time from a request's routing to its handler's return, by route pattern (a stream's lasts as long as the stream).",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler"})
	apply := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "patchd_patch_apply_duration_seconds",
		Help:    "Time from a patch's applying event to its applied or failed event (writing, checks, git: its duration_ms), by outcome; a patch that fails while planned, before applying, counts 0. _count counts the patches the worker applied and failed since the daemon started.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"state"})
	m.applied = apply.WithLabelValues(api.StateApplied)
	m.failed = apply.WithLabelValues(api.StateFailed)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchd_build_info",
		Help: "Always 1; the labels say which patchd runs.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version(),
			"goos": runtime.GOOS, "goarch": runtime.GOARCH},
	})
	build.Set(1)
	m.routes.Store(&map[string]*route{})
	m.reg.MustRegister(m.requests, m.duration, apply, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Service != nil {
		m.reg.MustRegister(newStatusCollector(opts.Service, opts.Logger))
	}
	return m
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, as the scraper asks). A scrape that cannot read a
// collector answers what it could read, and logs why.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveRequest counts one answered request: pattern is its route's
// pattern ("" when none matched), never its path, so the labels stay as
// few as the routes. After the first request of a route and code, it
// looks nothing up by label.
func (m *Metrics) ObserveRequest(pattern string, code int, d time.Duration) {
	r := m.route(pattern)
	r.dur.Observe(d.Seconds())
	r.counter(m, code).Inc()
}

func (m *Metrics) route(pattern string) *route {
	if r, ok := (*m.routes.Load())[pattern]; ok {
		return r
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	old := *m.routes.Load()
	if r, ok := old[pattern]; ok {
		return r
	}
	name := pattern
	if name == "" {
		name = noRoute
	}
	r := &route{name: name, dur: m.duration.WithLabelValues(name)}
	r.codes.Store(&map[int]prometheus.Counter{})
	routes := make(map[string]*route, len(old)+1)
	for k, v := range old {
		routes[k] = v
	}
	routes[pattern] = r
	m.routes.Store(&routes)
	return r
}

func (r *route) counter(m *Metrics, code int) prometheus.Counter {
	if c, ok := (*r.codes.Load())[code]; ok {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.codes.Load()
	if c, ok := old[code]; ok {
		return c
	}
	c := m.requests.WithLabelValues(r.name, strconv.Itoa(code))
	codes := make(map[int]prometheus.Counter, len(old)+1)
	for k, v := range old {
		codes[k] = v
	}
	codes[code] = c
	r.codes.Store(&codes)
	return c
}

// statusCollector exports what api.Status counts, read at each scrape.
type statusCollector struct {
	svc                     api.Service
	log                     *slog.Logger
	patches, queue, journal *prometheus.Desc
	deliveries, pending     *prometheus.Desc
}

func newStatusCollector(svc api.Service, log *slog.Logger) *statusCollector {
	return &statusCollector{svc: svc, log: log,
		patches: prometheus.NewDesc("patchd_patches_total",
			"Patches in the store in each state, as the store counts them (a gauge: a revert moves one from applied to reverted, a new attempt one from failed to queued, retention removes expired ones).",
			[]string{"state"}, nil),
		queue: prometheus.NewDesc("patchd_queue_depth",
			"Patches queued, waiting for the worker (the one being applied is counted in patchd_patches_total{state=\"applying\"}).", nil, nil),
		journal: prometheus.NewDesc("patchd_journal_bytes",
			"The durable size of the store's journal, in bytes.", nil, nil),
		deliveries: prometheus.NewDesc("patchd_notify_deliveries_total",
			"Notification attempts since the daemon started, by receiver (its URL redacted) and result: delivered, failed (retried later), gave_up, dropped (the outbox was full).",
			[]string{"receiver", "result"}, nil),
		pending: prometheus.NewDesc("patchd_notify_pending",
			"Notifications waiting in the durable outbox, by receiver (its URL redacted).", []string{"receiver"}, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.patches
	ch <- c.queue
	ch <- c.journal
	ch <- c.deliveries
	ch <- c.pending
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.svc.Status(ctx)
	if err != nil {
		c.log.Warn("metrics: read the store's counts", "err", err)
		ch <- prometheus.NewInvalidMetric(c.patches, err)
		return
	}
	q := st.Queue
	for _, s := range []struct {
		state string
		n     int
	}{{api.StateQueued, q.Queued}, {api.StateApplying, q.Applying}, {api.StateApplied, q.Applied}, {api.StateFailed, q.Failed}, {api.StateReverted, q.Reverted}} {
		ch <- prometheus.MustNewConstMetric(c.patches, prometheus.GaugeValue, float64(s.n), s.state)
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(q.Queued))
	ch <- prometheus.MustNewConstMetric(c.journal, prometheus.GaugeValue, float64(q.JournalBytes))
	for _, n := range st.Notify {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"delivered", n.Delivered}, {"failed", n.Failed}, {"gave_up", n.GaveUp}, {"dropped", n.Dropped}} {
			ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(r.n), n.Receiver, r.result)
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n.Pending), n.Receiver)
	}
}
