package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestForwardedHeaders: X-Forwarded-For/-Proto/-Host and Forwarded change
// nothing without --trust-proxy (the servers entry, the Origin check, the
// Host guard, the client address in logs); with it they give the servers
// entry (only for a host the guard answers), a same-origin Origin and the
// logged client address, and still not the Host guard (issue 12).
func TestForwardedHeaders(t *testing.T) {
	headers := []map[string]string{
		{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "patchd.example.com", "X-Forwarded-For": "203.0.113.7"},
		{"Forwarded": `for="203.0.113.7";proto=https;host=patchd.example.com`},
	}
	for _, trust := range []bool{false, true} {
		for _, h := range headers {
			var logs bytes.Buffer
			f := newFixture(t, func(o *Options) {
				o.Address = "127.0.0.1:5555"
				o.AllowedHosts = []string{"patchd.example.com"}
				o.TrustProxy = trust
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			do := func(method, path, host string, extra map[string]string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(method, path, nil)
				r.Host = host
				for k, v := range h {
					r.Header.Set(k, v)
				}
				for k, v := range extra {
					r.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, r)
				return rec
			}
			name := func(what string) string {
				return what + " (trust-proxy " + map[bool]string{true: "on", false: "off"}[trust] + ", " + strings.Join(keys(h), ",") + ")"
			}

			var doc struct{ Servers []struct{ URL string } }
			json.Unmarshal(do("GET", "/openapi.json", "127.0.0.1:5555", nil).Body.Bytes(), &doc)
			want := "http://127.0.0.1:5555"
			if trust {
				want = "https://patchd.example.com"
			}
			if len(doc.Servers) != 1 || doc.Servers[0].URL != want {
				t.Errorf("%s: servers %+v, want %s", name("servers"), doc.Servers, want)
			}

			rec := do("GET", "/ready", "127.0.0.1:5555", map[string]string{"Origin": "https://patchd.example.com"})
			if refused := rec.Code == 403; refused == trust {
				t.Errorf("%s: %d, refused %v, want %v", name("Origin of the forwarded host"), rec.Code, refused, !trust)
			}

			// The Host guard reads Host only.
			if rec := do("GET", "/ready", "evil.example", nil); rec.Code != 403 {
				t.Errorf("%s: Host evil.example answered %d", name("Host guard"), rec.Code)
			}

			logs.Reset()
			do("GET", "/patches", "127.0.0.1:5555", nil) // 401, logged
			logged := logs.String()
			if trust != strings.Contains(logged, "203.0.113.7") {
				t.Errorf("%s: the log names the forwarded client %v, want %v: %s", name("client address"), !trust, trust, logged)
			}
		}
	}

	// A forwarded host the guard does not answer is not believed, even
	// under --trust-proxy.
	f := newFixture(t, func(o *Options) { o.Address = "127.0.0.1:5555"; o.TrustProxy = true })
	r := httptest.NewRequest("GET", "/openapi.json", nil)
	r.Host = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "evil.example")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, r)
	if strings.Contains(rec.Body.String(), "evil.example") {
		t.Errorf("servers names a forwarded host nobody allowed: %.200s", rec.Body)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
