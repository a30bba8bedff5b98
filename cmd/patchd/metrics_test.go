package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics GETs /metrics (with token unless "") and parses it with
// the Prometheus text parser; code is the status.
func scrapeMetrics(t *testing.T, address, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+address+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return 200, fams
}

// sample is the value of family name's sample with the label pairs given
// (a histogram's: its count), and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
next:
	for _, m := range fams[name].GetMetric() {
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
		}
	}
	return 0, false
}

// TestMetricsProcess: the real daemon's /metrics, parsed with the
// Prometheus text parser, counts the patches sent (applied, failed, their
// apply times) and the requests by route and status; it needs the token,
// unless started with --metrics-public.
func TestMetricsProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 3
	for i := range n {
		os.WriteFile(filepath.Join(e.ws, fmt.Sprintf("f%d.txt", i)), []byte("seed\n"), 0o644)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	for i := range n {
		if code, body, err := cl.do("POST", "/webhook", seedBlock(fmt.Sprintf("p%d", i), fmt.Sprintf("f%d.txt", i))); err != nil || code != 202 {
			t.Fatalf("POST p%d = %d %s %v", i, code, body, err)
		}
	}
	// No seed in a missing file: it fails.
	if code, body, err := cl.do("POST", "/webhook", seedBlock("bad", "missing.txt")); err != nil || code != 202 {
		t.Fatalf("POST bad = %d %s %v", code, body, err)
	}
	if code, _ := scrapeMetrics(t, st.Address, ""); code != 401 {
		t.Errorf("GET /metrics without the token = %d, want 401", code)
	}
	var fams map[string]*dto.MetricFamily
	waitFor(t, 15*time.Second, "the patches' apply times", func() bool {
		_, fams = scrapeMetrics(t, st.Address, e.token())
		a, _ := sample(fams, "patchd_patch_apply_duration_seconds", "state", "applied")
		f, _ := sample(fams, "patchd_patch_apply_duration_seconds", "state", "failed")
		return a == n && f == 1
	})
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"patchd_patches_total", []string{"state", "applied"}, n},
		{"patchd_patches_total", []string{"state", "failed"}, 1},
		{"patchd_queue_depth", nil, 0},
		{"patchd_http_requests_total", []string{"handler", "POST /webhook", "code", "202"}, n + 1},
		{"patchd_http_requests_total", []string{"handler", "GET /metrics", "code", "401"}, 1},
		{"patchd_build_info", nil, 1},
	} {
		if got, ok := sample(fams, tt.name, tt.labels...); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if got, _ := sample(fams, "patchd_journal_bytes"); got <= 0 {
		t.Errorf("patchd_journal_bytes = %v, want the journal's size", got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors", name)
		}
	}

	if r := e.run("stop"); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if _, r := e.start("--metrics-public"); r.code != 0 {
		t.Fatalf("start --metrics-public: %s", r)
	}
	st, _ = e.status()
	if code, fams := scrapeMetrics(t, st.Address, ""); code != 200 || fams["patchd_patches_total"] == nil {
		t.Errorf("GET /metrics without the token under --metrics-public = %d, want 200 with the metrics", code)
	}
	if code, _, _ := (&client{base: "http://" + st.Address, http: http.DefaultClient}).do("GET", "/patches", nil); code != 401 {
		t.Errorf("GET /patches with no token under --metrics-public = %d, want 401", code)
	}
}
