package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeDashboard answers "dashboard" and takes a request with the cookie
// "s=ok" for one of its sessions.
type fakeDashboard struct{}

func (fakeDashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dashboard")) }

func (fakeDashboard) Authenticated(r *http.Request) bool {
	c, err := r.Cookie("s")
	return err == nil && c.Value == "ok"
}

// TestDashboardMounted: the server hands / and /ui/ to the dashboard, after
// its Host and Origin guard, and lets a request with a dashboard session
// read GET /events, but not the rest of the API.
func TestDashboardMounted(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Dashboard = fakeDashboard{} })
	for _, path := range []string{"/", "/ui/api/status", "/ui/static/app.js"} {
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Body.String() != "dashboard" {
			t.Errorf("GET %s = %d %q, want the dashboard's answer", path, rec.Code, rec.Body)
		}
	}
	r := httptest.NewRequest("POST", "/ui/login", nil)
	r.Header.Set("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Errorf("POST /ui/login from another site = %d, want 403 from the guard", rec.Code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r = httptest.NewRequestWithContext(ctx, "GET", "/events", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "ok"})
	rec = httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r) // streams until ctx ends
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Errorf("GET /events with a dashboard session = %d %q, want the stream", rec.Code, rec.Body)
	}
	for _, path := range []string{"/events", "/patches"} {
		r = httptest.NewRequest("GET", path, nil)
		r.AddCookie(&http.Cookie{Name: "s", Value: "bad"})
		rec = httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s with no valid session = %d, want 401", path, rec.Code)
		}
	}
	r = httptest.NewRequest("GET", "/patches", nil)
	r.AddCookie(&http.Cookie{Name: "s", Value: "ok"})
	rec = httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /patches with a dashboard session = %d, want 401 (the API takes the token)", rec.Code)
	}
}
