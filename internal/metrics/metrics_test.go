package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/patchd/patchd/internal/metrics"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/server"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

const token = "t0ken"

// stack is a real server over a real service (store, workspace, running
// worker), with metrics wired as the daemon wires them.
type stack struct {
	url string
	ws  string
}

func newStack(t *testing.T, public bool) *stack {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "queue"), store.Options{EventsPath: filepath.Join(dir, "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	wsDir := filepath.Join(dir, "ws")
	os.MkdirAll(wsDir, 0o755)
	ws, err := workspace.Open(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	wk := worker.New(worker.Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(dir, "summaries")})
	svc := patchsvc.New(patchsvc.Options{Store: st, Workspace: ws, Worker: wk})
	m := metrics.New(metrics.Options{Service: svc, Version: "9.9.9"})
	srv := server.New(server.Options{Service: svc, Token: token, Metrics: m.Handler(), MetricsPublic: public, Observer: m})
	ctx, cancel := context.WithCancel(context.Background())
	worked, followed := make(chan struct{}), make(chan struct{})
	go func() { wk.Run(ctx); close(worked) }()
	go func() { m.Follow(ctx); close(followed) }()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		cancel()
		<-worked
		<-followed
		st.Close()
		ws.Close()
	})
	return &stack{url: ts.URL, ws: wsDir}
}

func (s *stack) do(t *testing.T, method, path, auth, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// scrape GETs /metrics and parses it with the Prometheus text parser.
func (s *stack) scrape(t *testing.T, auth string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the sample of family name whose labels include
// labels (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func block(id, file, pattern string) string {
	return fmt.Sprintf(`{"id":%q,"role":"r","target_file":%q,"patch":{"pattern":%q,"replacement":"done"}}`, id, file, pattern)
}

// TestMetricsCounts: what /metrics says, parsed with the Prometheus text
// parser, matches what was sent: N patches applied and one failed are
// patchd_patches_total{state} and the apply histogram's counts; each
// request is counted under its route's pattern and its status (two ids
// under one handler, never the raw path); the store's figures, build
// information and the Go and process collectors are there.
func TestMetricsCounts(t *testing.T) {
	s := newStack(t, false)
	const n = 3
	for i := range n + 1 {
		os.WriteFile(filepath.Join(s.ws, fmt.Sprintf("f%d", i)), []byte("seed\n"), 0o644)
	}
	for i := range n {
		if code := s.do(t, "POST", "/webhook", token, block(fmt.Sprintf("ok%d", i), fmt.Sprintf("f%d", i), "seed")); code != 202 {
			t.Fatalf("POST ok%d = %d", i, code)
		}
	}
	if code := s.do(t, "POST", "/webhook", token, block("bad", fmt.Sprintf("f%d", n), "absent")); code != 202 {
		t.Fatalf("POST bad = %d", code)
	}
	s.do(t, "POST", "/webhook", "", block("x", "f0", "seed")) // 401
	deadline := time.Now().Add(10 * time.Second)
	var fams map[string]*dto.MetricFamily
	for {
		fams = s.scrape(t, token)
		a, _ := value(fams, "patchd_patch_apply_duration_seconds", "state", "applied")
		f, _ := value(fams, "patchd_patch_apply_duration_seconds", "state", "failed")
		if a == n && f == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("apply durations: %v applied, %v failed after 10s, want %d and 1", a, f, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"ok0", "ok1", "nope"} {
		s.do(t, "GET", "/patches/"+id, token, "")
	}
	s.do(t, "GET", "/no/such/route", token, "")
	fams = s.scrape(t, token)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"patchd_patches_total", []string{"state", "applied"}, n},
		{"patchd_patches_total", []string{"state", "failed"}, 1},
		{"patchd_patches_total", []string{"state", "queued"}, 0},
		{"patchd_queue_depth", nil, 0},
		{"patchd_http_requests_total", []string{"handler", "POST /webhook", "code", "202"}, n + 1},
		{"patchd_http_requests_total", []string{"handler", "POST /webhook", "code", "401"}, 1},
		{"patchd_http_requests_total", []string{"handler", "GET /patches/{id}", "code", "200"}, 2},
		{"patchd_http_requests_total", []string{"handler", "GET /patches/{id}", "code", "404"}, 1},
		{"patchd_http_requests_total", []string{"handler", "none", "code", "404"}, 1},
		{"patchd_http_request_duration_seconds", []string{"handler", "GET /patches/{id}"}, 3},
		{"patchd_patch_apply_duration_seconds", []string{"state", "applied"}, n},
		{"patchd_build_info", []string{"version", "9.9.9"}, 1},
	} {
		if got, ok := value(fams, tt.name, tt.labels...); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if got, ok := value(fams, "patchd_journal_bytes"); !ok || got <= 0 {
		t.Errorf("patchd_journal_bytes = %v (present %v), want the journal's size", got, ok)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors", name)
		}
	}
	for _, m := range fams["patchd_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "handler" && (strings.Contains(l.GetValue(), "ok0") || strings.Contains(l.GetValue(), "/no/such")) {
				t.Errorf("handler label %q is a raw path", l.GetValue())
			}
		}
	}
}

// TestMetricsToken: /metrics needs the token unless MetricsPublic.
func TestMetricsToken(t *testing.T) {
	s := newStack(t, false)
	for _, auth := range []string{"", "nope"} {
		if code := s.do(t, "GET", "/metrics", auth, ""); code != 401 {
			t.Errorf("GET /metrics with token %q = %d, want 401", auth, code)
		}
	}
	if code := s.do(t, "GET", "/metrics", token, ""); code != 200 {
		t.Errorf("GET /metrics with the token = %d, want 200", code)
	}
	pub := newStack(t, true)
	if code := pub.do(t, "GET", "/metrics", "", ""); code != 200 {
		t.Errorf("GET /metrics without a token under MetricsPublic = %d, want 200", code)
	}
	if code := pub.do(t, "GET", "/patches", "", ""); code != 401 {
		t.Errorf("GET /patches without a token under MetricsPublic = %d, want 401: only /metrics is public", code)
	}
}

// TestObserveRequestAllocs: once a route and code were seen, counting a
// request allocates nothing (pre-bound counters, no label lookup).
func TestObserveRequestAllocs(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("POST /webhook", 202, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.ObserveRequest("POST /webhook", 202, time.Millisecond) }); n != 0 {
		t.Errorf("ObserveRequest: %v allocations per request, want 0", n)
	}
}

// BenchmarkObserveRequest is what the server's observer adds to each
// request once its route and code were seen.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("POST /webhook", 202, time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("POST /webhook", 202, time.Millisecond)
	}
}
