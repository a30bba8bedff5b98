package dashboard

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// fakeService answers Status; the rest of api.Service is not called here.
type fakeService struct{ api.Service }

func (fakeService) Status(context.Context) (api.Status, error) { return api.Status{}, nil }

// rig is a Dashboard with a clock and a token the test moves.
type rig struct {
	d     *Dashboard
	now   atomic.Pointer[time.Time]
	token atomic.Pointer[string]
}

func newRig(t *testing.T) *rig {
	r := &rig{}
	now, tok := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), "secret-token"
	r.now.Store(&now)
	r.token.Store(&tok)
	r.d = New(Options{Service: fakeService{}, Token: func() string { return *r.token.Load() }, Now: func() time.Time { return *r.now.Load() }})
	return r
}

const origin = "http://example.test"

func (r *rig) do(method, path, body string, hdr map[string]string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, origin+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	r.d.ServeHTTP(rec, req)
	return rec
}

func (r *rig) login(t *testing.T, tok string) (*http.Cookie, string, int) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": tok})
	rec := r.do("POST", "/ui/login", string(b), map[string]string{"Origin": origin}, nil)
	var a sessionAnswer
	json.Unmarshal(rec.Body.Bytes(), &a)
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			return c, a.CSRF, rec.Code
		}
	}
	return nil, a.CSRF, rec.Code
}

// TestSessionEnds: a session ends when it expires, when the token is
// rotated, and at logout; the cookie is never the token.
func TestSessionEnds(t *testing.T) {
	r := newRig(t)
	c, _, code := r.login(t, "secret-token")
	if code != http.StatusOK || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, "secret-token") {
		t.Fatalf("login = %d, cookie %+v; want an HttpOnly SameSite=Strict cookie that is not the token", code, c)
	}
	if rec := r.do("GET", "/ui/api/status", "", nil, c); rec.Code != http.StatusOK {
		t.Fatalf("status with the session = %d %s", rec.Code, rec.Body)
	}
	later := r.now.Load().Add(sessionTTL)
	r.now.Store(&later)
	if rec := r.do("GET", "/ui/api/status", "", nil, c); rec.Code != http.StatusUnauthorized {
		t.Errorf("status after %s = %d, want 401", sessionTTL, rec.Code)
	}

	c, _, _ = r.login(t, "secret-token")
	rotated := "new-token"
	r.token.Store(&rotated)
	if rec := r.do("GET", "/ui/api/status", "", nil, c); rec.Code != http.StatusUnauthorized {
		t.Errorf("status after a token rotation = %d, want 401", rec.Code)
	}

	c, csrf, _ := r.login(t, "new-token")
	if rec := r.do("POST", "/ui/logout", "", map[string]string{"Origin": origin, CSRFHeader: csrf}, c); rec.Code != http.StatusOK {
		t.Fatalf("logout = %d %s", rec.Code, rec.Body)
	}
	if rec := r.do("GET", "/ui/api/status", "", nil, c); rec.Code != http.StatusUnauthorized {
		t.Errorf("status after logout = %d, want 401", rec.Code)
	}
}

// TestLoginRateLimited: after maxLoginFailures wrong tokens in a minute a
// login is refused with 429, even with the right token, until the minute
// has passed.
func TestLoginRateLimited(t *testing.T) {
	r := newRig(t)
	for i := range maxLoginFailures {
		if _, _, code := r.login(t, "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong login %d = %d, want 401", i+1, code)
		}
	}
	if _, _, code := r.login(t, "secret-token"); code != http.StatusTooManyRequests {
		t.Errorf("a login after %d wrong ones = %d, want 429", maxLoginFailures, code)
	}
	later := r.now.Load().Add(loginWindow)
	r.now.Store(&later)
	if _, _, code := r.login(t, "secret-token"); code != http.StatusOK {
		t.Errorf("a login a minute later = %d, want 200", code)
	}
}

// TestPageIsStatic: the page carries its security headers, and neither
// the HTML nor the script puts text into the page as HTML: no inline
// script or handler (the CSP forbids them), no innerHTML and the like.
func TestPageIsStatic(t *testing.T) {
	r := newRig(t)
	rec := r.do("GET", "/", "", nil, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>patchd</title>") {
		t.Fatalf("GET / = %d", rec.Code)
	}
	h := rec.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers = %v", h)
	}
	if rec := r.do("GET", "/ui/static/app.js", "", nil, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), "javascript") {
		t.Errorf("GET /ui/static/app.js = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	sub, _ := fs.Sub(staticFiles, "static")
	html, _ := fs.ReadFile(sub, "index.html")
	if m := regexp.MustCompile(`(?i)<script(?:[^>]*)>[^<]+|\son[a-z]+\s*=|javascript:|<style`).Find(html); m != nil {
		t.Errorf("index.html has inline script or style: %q", m)
	}
	js, _ := fs.ReadFile(sub, "app.js")
	if m := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Find(js); m != nil {
		t.Errorf("app.js puts text into the page as HTML or code: %q", m)
	}
	total := 0
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(sub, p)
			total += len(b)
		}
		return nil
	})
	if total > 64<<10 {
		t.Errorf("the page weighs %d bytes, over 64 KiB", total)
	}
}

// TestCookieSecure: the cookie is Secure when the page was reached through
// an https --public-url (or over TLS), and not on the local http address,
// where a browser would drop a Secure cookie.
func TestCookieSecure(t *testing.T) {
	d := New(Options{Service: fakeService{}, Token: func() string { return "tok" }, PublicURL: "https://patchd.example.com/"})
	for _, tt := range []struct {
		url, origin string
		secure      bool
	}{
		{"http://127.0.0.1:5555/ui/login", "http://127.0.0.1:5555", false},
		{"http://127.0.0.1:5555/ui/login", "https://patchd.example.com", true},
		{"https://patchd.example.com/ui/login", "https://patchd.example.com", true},
	} {
		req := httptest.NewRequest("POST", tt.url, strings.NewReader(`{"token":"tok"}`))
		req.Header.Set("Origin", tt.origin)
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		cs := rec.Result().Cookies()
		if rec.Code != http.StatusOK || len(cs) != 1 || cs[0].Secure != tt.secure {
			t.Errorf("login at %s from %s = %d, cookies %v; want one cookie, Secure %v", tt.url, tt.origin, rec.Code, cs, tt.secure)
		}
	}
}

// notifyService reports one receiver whose deliveries fail.
type notifyService struct{ api.Service }

func (notifyService) Status(context.Context) (api.Status, error) {
	return api.Status{Notify: []api.NotifyStatus{{Receiver: "https://hooks.slack.com/… #1a2b3c4d", Kind: "slack", Pending: 2, Failed: 3, LastError: "503 Service Unavailable"}}}, nil
}

// TestStatusShowsNotifyFailures: the health card's answer carries each
// receiver's pending messages and last error (issue 14: failed
// deliveries visible on the dashboard), and the page has a place for
// them that app.js fills.
func TestStatusShowsNotifyFailures(t *testing.T) {
	r := newRig(t)
	r.d = New(Options{Service: notifyService{}, Token: func() string { return *r.token.Load() }, Now: func() time.Time { return *r.now.Load() }})
	c, _, code := r.login(t, "secret-token")
	if c == nil {
		t.Fatalf("login: %d, no cookie", code)
	}
	rec := r.do("GET", "/ui/api/status", "", nil, c)
	var a statusAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status: %d %s", rec.Code, rec.Body)
	}
	if len(a.Notify) != 1 || a.Notify[0].Pending != 2 || a.Notify[0].LastError == "" {
		t.Fatalf("status notify = %+v, want the receiver with 2 pending and its last error", a.Notify)
	}
	page, err := fs.ReadFile(staticFiles, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	js, err := fs.ReadFile(staticFiles, "static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `id="h-notify"`) || !strings.Contains(string(js), "last_error") {
		t.Fatal("the page has no notifications card filled from the status")
	}
}

// workspaceService lists a patch of a workspace, as a NATS gateway does.
type workspaceService struct{ api.Service }

func (workspaceService) List(context.Context, api.ListOptions) (api.PatchList, error) {
	return api.PatchList{Patches: []api.PatchView{{ID: "p1", Workspace: "web", State: api.StateQueued}}}, nil
}

// TestWorkspaceColumn: behind a gateway the list answer carries each
// patch's workspace (the page's Workspace column and a patch's Workspace
// row are held in a real browser by cmd/patchd's
// TestGatewayDashboardBrowser).
func TestWorkspaceColumn(t *testing.T) {
	r := newRig(t)
	r.d = New(Options{Service: workspaceService{}, Token: func() string { return *r.token.Load() }, Now: func() time.Time { return *r.now.Load() }})
	c, _, code := r.login(t, "secret-token")
	if c == nil {
		t.Fatalf("login: %d, no cookie", code)
	}
	rec := r.do("GET", "/ui/api/patches", "", nil, c)
	var l api.PatchList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || rec.Code != http.StatusOK || len(l.Patches) != 1 || l.Patches[0].Workspace != "web" {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
}
