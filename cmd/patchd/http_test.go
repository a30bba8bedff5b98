package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hreq is one HTTP request as a hostile web page or a tunnel would send it:
// any Host, any Origin, any Content-Type (or none).
type hreq struct {
	method, path, host string
	headers            map[string]string
	body               string
}

// send makes the request to address on a new connection and returns the
// status and body.
func (h hreq) send(t *testing.T, address string) (int, string) {
	t.Helper()
	var body io.Reader
	if h.body != "" {
		body = strings.NewReader(h.body)
	}
	req, err := http.NewRequest(h.method, "http://"+address+h.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if h.host != "" {
		req.Host = h.host
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", h.method, h.path, h.host, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	// A refusal's message, unquoted, so tests can look for the value quoted.
	var a struct {
		Result struct {
			Error string `json:"error"`
		} `json:"result"`
	}
	if json.Unmarshal(data, &a) == nil && a.Result.Error != "" {
		return resp.StatusCode, a.Result.Error
	}
	return resp.StatusCode, string(data)
}

// TestCrossSiteRefused: with --no-auth, what a web page in the user's
// browser can send is refused: a POST without a JSON Content-Type (a
// `fetch` in no-cors mode sends none, or text/plain), a request carrying a
// foreign Origin, and a request whose Host names another site (DNS
// rebinding, which would otherwise let the page read patches). Requests
// addressed to the bound address, localhost, 127.0.0.1 or [::1] are
// served; --allowed-host and --allowed-origin admit a tunnel's name and a
// chosen web app. Each refusal names the header and its value, and is
// logged with the client's address.
func TestCrossSiteRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("a\n"), 0o644)
	_, r := e.start("--no-auth", "--allowed-host", "patchd.tunnel.example", "--allowed-origin", "https://chat.openai.com")
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	addr := st.Address
	port := addr[strings.LastIndex(addr, ":")+1:]
	blk := `{"id":"x1","role":"r","target_file":"a.txt","patch":{"pattern":"a","replacement":"b"}}`
	jsonCT := map[string]string{"Content-Type": "application/json"}

	tests := []struct {
		name string
		req  hreq
		code int
		want []string
	}{
		{name: "POST without Content-Type", req: hreq{method: "POST", path: "/webhook", body: blk},
			code: 415, want: []string{"Content-Type", "application/json"}},
		{name: "POST as text/plain", req: hreq{method: "POST", path: "/webhook", body: blk, headers: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}},
			code: 415, want: []string{`"text/plain;charset=UTF-8"`}},
		{name: "revert without Content-Type", req: hreq{method: "POST", path: "/patches/x1/revert"},
			code: 415, want: []string{"Content-Type"}},
		{name: "preview as form", req: hreq{method: "POST", path: "/patches/preview", body: blk, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			code: 415, want: []string{`"application/x-www-form-urlencoded"`}},
		{name: "foreign Origin", req: hreq{method: "POST", path: "/webhook", body: blk, headers: map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}},
			code: 403, want: []string{"Origin", `"https://evil.example"`, "--allowed-origin"}},
		{name: "null Origin", req: hreq{method: "GET", path: "/patches", headers: map[string]string{"Origin": "null"}},
			code: 403, want: []string{"Origin", `"null"`}},
		{name: "DNS rebinding read", req: hreq{method: "GET", path: "/patches", host: "evil.example:" + port},
			code: 403, want: []string{"Host", `"evil.example:` + port + `"`, "--allowed-host"}},
		{name: "DNS rebinding health", req: hreq{method: "GET", path: "/health", host: "evil.example:" + port},
			code: 403, want: []string{"Host"}},
		{name: "DNS rebinding write", req: hreq{method: "POST", path: "/webhook", host: "evil.example", body: blk, headers: jsonCT},
			code: 403, want: []string{"Host", `"evil.example"`}},

		{name: "bound address", req: hreq{method: "GET", path: "/patches"}, code: 200},
		{name: "localhost", req: hreq{method: "GET", path: "/patches", host: "localhost:" + port}, code: 200},
		{name: "localhost without port", req: hreq{method: "GET", path: "/health", host: "localhost"}, code: 200},
		{name: "LOCALHOST.", req: hreq{method: "GET", path: "/health", host: "LOCALHOST."}, code: 200},
		{name: "ipv6 loopback", req: hreq{method: "GET", path: "/patches", host: "[::1]:" + port}, code: 200},
		{name: "127.0.0.1", req: hreq{method: "GET", path: "/patches", host: "127.0.0.1"}, code: 200},
		{name: "allowed host", req: hreq{method: "GET", path: "/patches", host: "patchd.tunnel.example"}, code: 200},
		{name: "allowed host with port", req: hreq{method: "GET", path: "/patches", host: "patchd.tunnel.example:443"}, code: 200},
		{name: "allowed origin", req: hreq{method: "GET", path: "/patches", headers: map[string]string{"Origin": "https://chat.openai.com"}}, code: 200},
		{name: "same origin", req: hreq{method: "GET", path: "/patches", host: "localhost:" + port, headers: map[string]string{"Origin": "http://localhost:" + port}}, code: 200},
	}
	for _, tt := range tests {
		code, body := tt.req.send(t, addr)
		if code != tt.code {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.req.method, tt.req.path, code, body, tt.code)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: answer %s, want it to name %s", tt.name, body, w)
			}
		}
	}
	// Nothing a refused request carried was stored.
	if code, body := (hreq{method: "GET", path: "/patches/x1"}).send(t, addr); code != http.StatusNotFound {
		t.Errorf("after the refusals GET /patches/x1 = %d %s, want 404", code, body)
	}
	// A JSON POST to the bound address is served.
	if code, body := (hreq{method: "POST", path: "/webhook", body: blk, headers: jsonCT}).send(t, addr); code != http.StatusAccepted {
		t.Errorf("POST /webhook with application/json = %d %s, want 202", code, body)
	}
	// Each refusal left a line in the log naming the client and the reason.
	logData, _ := os.ReadFile(filepath.Join(e.stateDir(), "logs", "patchd.log"))
	for _, want := range []string{`"status":415`, `"status":403`, `"client":"127.0.0.1:`, `refused Host \"evil.example`} {
		if !bytes.Contains(logData, []byte(want)) {
			t.Errorf("the log has no refusal line with %s:\n%s", want, logData)
		}
	}
}

// TestForeignHostRefusedWithToken: with a token, the Host check still holds,
// so a rebinding page cannot read even what needs no token.
func TestForeignHostRefusedWithToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	for _, path := range []string{"/health", "/openapi.json", "/ready"} {
		code, body := hreq{method: "GET", path: path, host: "rebind.example"}.send(t, st.Address)
		if code != http.StatusForbidden || !strings.Contains(body, `"rebind.example"`) {
			t.Errorf("GET %s with Host rebind.example = %d %s, want 403 naming the host", path, code, body)
		}
	}
	if r := e.run("health"); r.code != 0 {
		t.Errorf("patchd health: %s", r)
	}
}

// TestHealthDetailNeedsToken: without the token /health answers only its
// status and uptime (no state dir path, pid or machine figures for whoever
// reaches the port through a tunnel); with the token, or with
// --health-detail=public, everything. patchd health, status and start,
// which know the token, still get and print the details.
func TestHealthDetailNeedsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pid, r := e.start()
	if r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	health := func(token string) map[string]any {
		t.Helper()
		h := hreq{method: "GET", path: "/health"}
		if token != "" {
			h.headers = map[string]string{"Authorization": "Bearer " + token}
		}
		code, body := h.send(t, st.Address)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil || code != 200 {
			t.Fatalf("GET /health = %d %s %v", code, body, err)
		}
		return m
	}
	brief := health("")
	if len(brief) != 2 || brief["status"] != "ok" || brief["uptime_seconds"] == nil {
		t.Errorf("GET /health without a token = %v, want only status and uptime_seconds", brief)
	}
	if wrong := health("not-the-token"); len(wrong) != 2 {
		t.Errorf("GET /health with a wrong token = %v, want only status and uptime_seconds", wrong)
	}
	full := health(e.token())
	if full["pid"] != float64(pid) || full["system"] == nil || full["queue"] == nil {
		t.Errorf("GET /health with the token = %v, want pid %d, system and queue", full, pid)
	}
	if r := e.run("health", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"pid":`+strconv.Itoa(pid)) || !strings.Contains(r.stdout, `"system"`) {
		t.Errorf("patchd health --json: %s, want the details", r)
	}
	if r := e.run("health"); r.code != 0 || !strings.Contains(r.stdout, "pid="+strconv.Itoa(pid)) {
		t.Errorf("patchd health: %s, want pid=%d", r, pid)
	}
	if r := e.run("start", "--port", "0"); r.code != 0 || pidOf(r.stdout) != pid {
		t.Errorf("patchd start while running: %s, want exit 0 and pid %d", r, pid)
	}
	if r := e.run("status"); r.code != 0 || !strings.Contains(r.stdout, "pid="+strconv.Itoa(pid)) {
		t.Errorf("patchd status: %s", r)
	}

	// Opting in makes the details public.
	e2 := newEnv(t)
	if _, r := e2.start("--health-detail", "public"); r.code != 0 {
		t.Fatalf("start --health-detail public: %s", r)
	}
	st2, _ := e2.status()
	code, body := hreq{method: "GET", path: "/health"}.send(t, st2.Address)
	if code != 200 || !strings.Contains(body, `"pid":`) || !strings.Contains(body, `"system"`) {
		t.Errorf("GET /health with --health-detail=public = %d %s, want the details", code, body)
	}
	if r := e2.run("run", "--health-detail", "everyone"); r.code != 2 || !strings.Contains(r.stderr, "--health-detail") {
		t.Errorf("run --health-detail everyone: %s, want exit 2 naming the flag", r)
	}
}

// TestOpenAPIServers: /openapi.json names the address patchd listens on,
// or --public-url, never what the request's Host said.
func TestOpenAPIServers(t *testing.T) {
	t.Parallel()
	servers := func(address, host string) string {
		t.Helper()
		code, body := hreq{method: "GET", path: "/openapi.json", host: host}.send(t, address)
		var doc struct {
			Servers []struct{ URL string } `json:"servers"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil || code != 200 || len(doc.Servers) != 1 {
			t.Fatalf("GET /openapi.json (Host %q) = %d %s", host, code, body)
		}
		return doc.Servers[0].URL
	}
	e := newEnv(t)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	port := st.Address[strings.LastIndex(st.Address, ":")+1:]
	if got := servers(st.Address, "localhost:"+port); got != "http://"+st.Address {
		t.Errorf("servers with Host localhost:%s = %q, want the bound address http://%s", port, got, st.Address)
	}
	// The document the binary serves, every door on, is valid OpenAPI 3.1
	// (issue 12: a GPT action imports it), with the listening address and
	// below with a --public-url.
	if code, body := (hreq{method: "GET", path: "/openapi.json", host: "localhost:" + port}).send(t, st.Address); code != 200 {
		t.Fatalf("GET /openapi.json: %d %s", code, body)
	} else {
		validateOpenAPI(t, []byte(body))
	}

	// Forwarding headers are not believed without --trust-proxy.
	fwd := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost", "Forwarded": "proto=https;host=localhost"}
	if code, body := (hreq{method: "GET", path: "/openapi.json", host: "localhost:" + port, headers: fwd}).send(t, st.Address); code != 200 || strings.Contains(body, "https://localhost") {
		t.Errorf("GET /openapi.json with X-Forwarded-* and no --trust-proxy = %d %.300s", code, body)
	}
	// With --trust-proxy, a forwarded host the guard answers is the servers entry.
	e3 := newEnv(t)
	if _, r := e3.start("--trust-proxy", "--allowed-host", "patchd.example.com"); r.code != 0 {
		t.Fatalf("start --trust-proxy: %s", r)
	}
	st3, _ := e3.status()
	fwd3 := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "patchd.example.com"}
	if code, body := (hreq{method: "GET", path: "/openapi.json", host: "patchd.example.com", headers: fwd3}).send(t, st3.Address); code != 200 || !strings.Contains(body, `"servers":[{"url":"https://patchd.example.com"}]`) {
		t.Errorf("GET /openapi.json with --trust-proxy and X-Forwarded-Host = %d %.300s", code, body)
	}

	e2 := newEnv(t)
	if _, r := e2.start("--public-url", "https://patchd.example.com/"); r.code != 0 {
		t.Fatalf("start --public-url: %s", r)
	}
	st2, _ := e2.status()
	// The public URL's host is answered (it is where the tunnel points).
	if got := servers(st2.Address, "patchd.example.com"); got != "https://patchd.example.com" {
		t.Errorf("servers with --public-url = %q, want https://patchd.example.com", got)
	}
	// The document the binary serves is valid OpenAPI 3.1 (issue 12).
	code, body := hreq{method: "GET", path: "/openapi.json", host: "patchd.example.com"}.send(t, st2.Address)
	if code != 200 {
		t.Fatalf("GET /openapi.json: %d %s", code, body)
	}
	validateOpenAPI(t, []byte(body))
	for _, bad := range []string{"http://patchd.example.com", "ftp://x.example", "https://", "https://x.example/?q=1", "patchd.example.com"} {
		if r := e2.run("status", "--public-url", bad); r.code != 2 || !strings.Contains(r.stderr, "--public-url") {
			t.Errorf("--public-url %q: %s, want exit 2 naming the flag", bad, r)
		}
	}
	if r := e2.run("status", "--public-url", "http://localhost:8080"); r.code != 0 {
		t.Errorf("--public-url http://localhost:8080 (loopback, no TLS needed): %s", r)
	}
}
