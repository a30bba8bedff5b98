package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir, when set, keeps the dashboard tests' screenshots there
// (-screenshots DIR); otherwise they go to the test's artifact directory
// (kept with go test -artifacts).
var screenshotDir = flag.String("screenshots", "", "write the dashboard tests' screenshots to this directory")

// chromiumPath finds the browser the dashboard tests drive, or skips the
// test saying why; PATCHD_REQUIRE_CHROMIUM=1 (CI) fails it instead.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PATCHD_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium in PATH, and PATCHD_REQUIRE_CHROMIUM=1: install it (apt-get install -y chromium)")
	}
	t.Skip("the dashboard's browser test needs chromium (apt-get install -y chromium); none in PATH, so it is skipped")
	return ""
}

// postBlock sends a patch block to /webhook with the token.
func postBlock(t *testing.T, address, token, block string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+address+"/webhook", strings.NewReader(block))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /webhook = %d %s", resp.StatusCode, body)
	}
}

// page drives one browser tab and writes numbered screenshots.
type page struct {
	t   *testing.T
	ctx context.Context
	dir string
	n   int
}

// do runs steps within 20 s; on failure it takes a screenshot and fails.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot("failed-" + what)
		p.t.Fatalf("%s: %v", what, err)
	}
}

// until polls a JavaScript condition in the page (no sleep), for at most 20 s.
func (p *page) until(what, js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 25*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.shot("failed-" + what)
		text, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("waiting for %s: %v; the page says:\n%s", what, err, text)
	}
}

func (p *page) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p.n++
	file := filepath.Join(p.dir, fmt.Sprintf("%02d-%s.png", p.n, name))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
	}
}

// TestDashboardBrowser drives the dashboard in a real headless Chromium
// against the real binary: a wrong token is refused; the token logs in; a
// patch posted meanwhile appears without a reload (the page's EventSource
// on /events, with the session cookie); its diff shows; the Revert button
// restores the file on disk; a failed patch shows its closest lines, and
// edited and resent it applies; the preview pad shows a diff; the page on
// a phone's width and in the dark theme. Each step's page is a screenshot.
func TestDashboardBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "b.txt"), []byte("first line\nthe other line\nthird line\n"), 0o644)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st := e.waitRunning(10 * time.Second)
	token := e.token()
	dir := *screenshotDir
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	p := &page{t: t, ctx: bctx, dir: dir}
	base := "http://" + st.Address + "/"

	// The first Run starts the browser: no timeout on it (it would end
	// the browser with it).
	if err := chromedp.Do(bctx, chromedp.Navigate(base)); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	p.do("the login form", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	p.shot("login")

	p.do("a wrong token", chromedp.SetValue(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	p.until("the wrong token's refusal", `document.getElementById("login-error").textContent.includes("wrong token")`)
	p.shot("login-refused")

	p.do("the login", chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")))
	p.until("the dashboard, live", `!document.getElementById("app").hidden && document.getElementById("live").textContent === "live"`)
	p.until("the health card", `document.getElementById("h-status").textContent === "up"`)
	p.shot("dashboard-empty")

	// Posted while the page is open: it appears without a reload.
	postBlock(t, st.Address, token, string(seedBlock("P1", "a.txt")))
	p.until("P1 in the list, applied", `!!document.querySelector('#list button[data-id="P1"] .s-applied')`)
	p.shot("patch-appeared")

	p.do("open P1", chromedp.Click(chromedp.CSS(`#list button[data-id="P1"]`)))
	p.until("P1's diff", `document.getElementById("d-diff").textContent.includes("+seed+P1") && !!document.querySelector("#d-diff .add")`)
	p.shot("patch-applied")

	p.do("revert P1", chromedp.Click(chromedp.CSS("#d-revert")))
	p.until("the confirmation", `!document.getElementById("d-confirm").hidden`)
	p.shot("revert-confirm")
	p.do("confirm the revert", chromedp.Click(chromedp.CSS("#d-confirm-yes")))
	waitFor(t, 20*time.Second, "a.txt restored on disk", func() bool {
		data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt"))
		return string(data) == "seed\n"
	})
	p.until("P1 reverted on the page", `document.getElementById("d-state").textContent === "reverted"`)
	p.shot("patch-reverted")

	// A patch that fails: the refusal shows the closest lines.
	postBlock(t, st.Address, token, `{"id":"F1","role":"ci_patch","target_file":"b.txt","description":"fix the other line","metadata":{"author":"gpt","source":"custom-gpt"},"patch":{"search":"the othr line\n","replace":"the fixed line\n"}}`)
	p.until("F1 in the list, failed", `!!document.querySelector('#list button[data-id="F1"] .s-failed')`)
	p.do("open F1", chromedp.Click(chromedp.CSS(`#list button[data-id="F1"]`)))
	p.until("F1's closest lines", `document.getElementById("d-error").textContent.includes("the other line") && document.getElementById("d-error").textContent.includes("closest")`)
	p.until("who sent F1", `document.getElementById("d-meta").textContent.includes("custom-gpt")`)
	p.shot("patch-failed")

	// Edit and resend: the same id, a new attempt, applied.
	p.do("edit F1", chromedp.Click(chromedp.CSS("#d-edit")))
	p.until("F1's body in the editor", `document.getElementById("d-body").value.includes("the othr line")`)
	p.do("fix F1's body", chromedp.Evaluate[chromedp.Void](`(() => { const b = document.getElementById("d-body"); b.value = b.value.replace("the othr line", "the other line"); })()`))
	p.shot("patch-edit")
	p.do("resend F1", chromedp.Click(chromedp.CSS(`#d-resend button[type="submit"]`)))
	waitFor(t, 20*time.Second, "b.txt changed by F1's second attempt", func() bool {
		data, _ := os.ReadFile(filepath.Join(e.ws, "b.txt"))
		return strings.Contains(string(data), "the fixed line")
	})
	p.until("F1 applied on the page", `document.getElementById("d-state").textContent === "applied"`)
	p.shot("patch-resent")

	// The preview pad: a bare unified diff, nothing written.
	diff := "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n seed\n+hello from the pad\n"
	p.do("paste into the preview pad", chromedp.SetValue(chromedp.CSS("#p-text"), diff), chromedp.Click(chromedp.CSS(`#preview-form button[type="submit"]`)))
	p.until("the preview's diff", `document.getElementById("p-out").textContent.includes("+hello from the pad")`)
	p.do("scroll to the pad", chromedp.Evaluate[chromedp.Void](`document.getElementById("preview").scrollIntoView()`))
	p.shot("preview")
	if data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt")); string(data) != "seed\n" {
		t.Errorf("a preview wrote a.txt: %q", data)
	}

	// A text that would be refused: the refusal, with the closest lines.
	p.do("paste a patch that would fail", chromedp.SetValue(chromedp.CSS("#p-text"), `{"id":"X1","role":"pad","target_file":"b.txt","patch":{"search":"third lin\n","replace":"3\n"}}`),
		chromedp.Click(chromedp.CSS(`#preview-form button[type="submit"]`)))
	p.until("the preview's refusal", `document.getElementById("p-out").textContent.includes("closest") && document.getElementById("p-msg").textContent.includes("refused")`)
	p.do("scroll to the pad", chromedp.Evaluate[chromedp.Void](`document.getElementById("preview").scrollIntoView()`))
	p.shot("preview-refused")

	p.do("the dark theme", chromedp.Click(chromedp.CSS("#theme")))
	p.until("the dark theme on", `document.documentElement.dataset.theme === "dark"`)
	p.shot("dark")
	p.do("a phone's screen", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)))
	p.until("the page within 360 px", `document.documentElement.scrollWidth <= 360`)
	p.shot("phone")
}

// dashClient is a plain HTTP client with a cookie jar, as a browser page
// from the given origin would send requests ("" sends no Origin).
type dashClient struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

func newDashClient(t *testing.T, address string) *dashClient {
	jar, _ := cookiejar.New(nil)
	return &dashClient{t: t, base: "http://" + address, client: &http.Client{Jar: jar}}
}

func (c *dashClient) do(method, path, origin, csrf, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if csrf != "" {
		req.Header.Set("X-Patchd-CSRF", csrf)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDashboardSessions holds the dashboard's session model with a plain
// HTTP client against the real binary: a wrong token is refused (401); the
// right one sets an HttpOnly, SameSite=Strict cookie that is not the
// token; a cross-site POST to the revert endpoint is refused (no CSRF
// token, a foreign Origin, Sec-Fetch-Site cross-site) and reverts
// nothing; the same request from the page reverts; the cookie opens GET
// /events but no bearer-token endpoint; logout and a token rotation end
// the session.
func TestDashboardSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st := e.waitRunning(10 * time.Second)
	token := e.token()
	self := "http://" + st.Address
	postBlock(t, st.Address, token, string(seedBlock("P1", "a.txt")))
	read := func() string { data, _ := os.ReadFile(filepath.Join(e.ws, "a.txt")); return string(data) }
	waitFor(t, 10*time.Second, "P1 to apply", func() bool { return read() == "seed+P1\n" })

	c := newDashClient(t, st.Address)
	if code, body := c.do("POST", "/ui/login", self, "", `{"token":"wrong"}`); code != http.StatusUnauthorized || !strings.Contains(body, "wrong token") {
		t.Errorf("login with a wrong token = %d %s, want 401 saying so", code, body)
	}
	if code, body := c.do("POST", "/ui/login", "https://evil.example", "", `{"token":"`+token+`"}`); code != http.StatusForbidden {
		t.Errorf("login from another site = %d %s, want 403", code, body)
	}
	code, body := c.do("POST", "/ui/login", self, "", `{"token":"`+token+`"}`)
	if code != http.StatusOK {
		t.Fatalf("login = %d %s", code, body)
	}
	var s struct {
		CSRF string `json:"csrf"`
	}
	json.Unmarshal([]byte(body), &s)
	u, _ := url.Parse(self)
	cookies := c.client.Jar.Cookies(u)
	if len(cookies) != 1 || s.CSRF == "" {
		t.Fatalf("after the login: cookies %v, csrf %q; want one session cookie and a CSRF token", cookies, s.CSRF)
	}
	// The jar keeps only name and value: read the attributes from a login.
	req, _ := http.NewRequest("POST", self+"/ui/login", strings.NewReader(`{"token":"`+token+`"}`))
	req.Header.Set("Origin", self)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, token) || strings.Contains(body, token) {
		t.Errorf("the token is in the cookie or the login's answer: %q %q", sc, body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("the login's answer lacks %s", h)
		}
	}

	// Cross-site attempts at the revert endpoint: refused, nothing reverted.
	for _, tt := range []struct{ name, origin, csrf string }{
		{"no CSRF token", self, ""},
		{"a wrong CSRF token", self, "x" + s.CSRF},
		{"a foreign Origin", "https://evil.example", s.CSRF},
		{"no Origin", "", s.CSRF},
	} {
		if code, body := c.do("POST", "/ui/api/patches/P1/revert", tt.origin, tt.csrf, ""); code != http.StatusForbidden {
			t.Errorf("revert with %s = %d %s, want 403", tt.name, code, body)
		}
	}
	req, _ = http.NewRequest("POST", self+"/ui/api/patches/P1/revert", nil)
	req.Header.Set("Origin", self)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("X-Patchd-CSRF", s.CSRF)
	if resp, err := c.client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("revert with Sec-Fetch-Site cross-site = %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := read(); got != "seed+P1\n" {
		t.Fatalf("a refused revert changed a.txt: %q", got)
	}

	// The cookie reads the dashboard's endpoints and /events, not the API.
	// The file is written before the outcome is recorded: poll.
	var status string
	waitFor(t, 10*time.Second, "the status to count P1 applied in the last hour", func() bool {
		code, body := c.do("GET", "/ui/api/status", "", "", "")
		status = fmt.Sprint(code, " ", body)
		return code == http.StatusOK && strings.Contains(body, `"applied_hour":1`)
	})
	t.Logf("status: %s", status)
	if code, _ := c.do("GET", "/patches", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /patches with the cookie = %d, want 401 (the API takes the token only)", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ = http.NewRequestWithContext(ctx, "GET", self+"/events?after=0", nil)
	resp, err = c.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /events with the cookie = %v %v, want 200", resp, err)
	} else {
		buf := make([]byte, 4096)
		n, _ := io.ReadAtLeast(resp.Body, buf, 1)
		if !bytes.Contains(buf[:n], []byte("retry:")) {
			t.Errorf("GET /events with the cookie: %q", buf[:n])
		}
		resp.Body.Close()
	}
	cancel()

	if code, body := c.do("POST", "/ui/api/patches/P1/revert", self, s.CSRF, ""); code != http.StatusOK {
		t.Fatalf("revert from the page = %d %s", code, body)
	}
	if got := read(); got != "seed\n" {
		t.Errorf("after the revert a.txt = %q", got)
	}

	// A token rotation ends the session.
	if r := e.run("token", "--rotate"); r.code != 0 {
		t.Fatalf("token --rotate: %s", r)
	}
	if code, body := c.do("GET", "/ui/api/status", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("status after a token rotation = %d %s, want 401", code, body)
	}
	// Logout ends a session too.
	c2 := newDashClient(t, st.Address)
	code, body = c2.do("POST", "/ui/login", self, "", `{"token":"`+e.token()+`"}`)
	json.Unmarshal([]byte(body), &s)
	if code != http.StatusOK {
		t.Fatalf("login with the new token = %d %s", code, body)
	}
	if code, body := c2.do("POST", "/ui/logout", self, s.CSRF, ""); code != http.StatusOK {
		t.Errorf("logout = %d %s", code, body)
	}
	if code, _ := c2.do("GET", "/ui/api/status", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("status after logout = %d, want 401", code)
	}
}
