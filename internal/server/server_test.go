package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/sysinfo"
)

func TestHealthAndReady(t *testing.T) {
	s := New(Options{
		Info:    Info{Port: 5555, Version: "v", InstanceID: "i", StartedAt: time.Now().Add(-2 * time.Second)},
		Sampler: sysinfo.NewSampler(t.TempDir()),
		Service: newFixture(t, nil).svc,
	})
	tests := []struct {
		name   string
		ready  bool
		path   string
		code   int
		status string
	}{
		{name: "health starting", path: "/health", code: 503, status: "starting"},
		{name: "ready before", path: "/ready", code: 503},
		{name: "health ok", ready: true, path: "/health", code: 200, status: "ok"},
		{name: "ready after", ready: true, path: "/ready", code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetReady(tt.ready)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("GET %s = %d, want %d", tt.path, rec.Code, tt.code)
			}
			if tt.path != "/health" {
				return
			}
			var h Health
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
				t.Fatal(err)
			}
			if h.Status != tt.status || h.Port != 5555 || h.PID == 0 || h.UptimeSeconds < 2 || h.System == nil || h.System.Goroutines == 0 || h.Queue == nil {
				t.Errorf("GET /health = %s, want status %q with port, pid, uptime, system and queue", rec.Body, tt.status)
			}
		})
	}
}

func TestHealthMethod(t *testing.T) {
	s := New(Options{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/health", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /health = %d, want 405", rec.Code)
	}
}

// TestHealthDetail: with a token configured, /health's details (pid, port,
// version, system, queue) go only to callers with the token, or to every
// caller with HealthPublic.
func TestHealthDetail(t *testing.T) {
	tests := []struct {
		name   string
		public bool
		auth   string
		detail bool
	}{
		{name: "no token", detail: false},
		{name: "wrong token", auth: "Bearer nope", detail: false},
		{name: "token", auth: "Bearer " + testToken, detail: true},
		{name: "public", public: true, detail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Token: testToken, HealthPublic: tt.public, Info: Info{Port: 5555}, Sampler: sysinfo.NewSampler(t.TempDir())})
			s.SetReady(true)
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/health", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			s.ServeHTTP(rec, r)
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
				t.Fatalf("GET /health = %d %s", rec.Code, rec.Body)
			}
			_, hasPID := m["pid"]
			_, hasSystem := m["system"]
			if hasPID != tt.detail || hasSystem != tt.detail || m["status"] != "ok" || m["uptime_seconds"] == nil {
				t.Errorf("GET /health = %s, want details %v", rec.Body, tt.detail)
			}
			if !tt.detail && len(m) != 2 {
				t.Errorf("GET /health = %s, want only status and uptime_seconds", rec.Body)
			}
		})
	}
}
