package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

const testToken = "t0ken"

// fixture is a Server over a real service: store, workspace and worker
// (not running: patches stay queued) in a temporary directory.
type fixture struct {
	srv   *Server
	store *store.Store
	ws    *workspace.Workspace
	svc   *patchsvc.Service
	// worker is the service's worker, not running until a test runs it.
	worker *worker.Worker
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "queue"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	wsDir := filepath.Join(dir, "ws")
	os.MkdirAll(wsDir, 0o755)
	ws, err := workspace.Open(wsDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	wk := worker.New(worker.Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(dir, "summaries")})
	svc := patchsvc.New(patchsvc.Options{Store: st, Workspace: ws, Worker: wk})
	opts := Options{Service: svc, Token: testToken, MaxBodyBytes: 1 << 20}
	if mod != nil {
		mod(&opts)
	}
	return &fixture{srv: New(opts), store: st, ws: ws, svc: svc, worker: wk}
}

func block(id string) string {
	return `{"id":"` + id + `","role":"ui_patch","target_file":"src/app.py","description":"d","patch":{"pattern":"a","replacement":"b"}}`
}

type req struct {
	body    string
	headers map[string]string
}

func (f *fixture) post(r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest("POST", "/webhook", strings.NewReader(r.body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+testToken)
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("body %q is not the answer shape: %v", rec.Body, err)
	}
	return a
}

// TestWebhookRefusals: each refusal has its status and a message naming
// what was wrong, in the seed's body shape, and stores nothing.
func TestWebhookRefusals(t *testing.T) {
	f := newFixture(t, nil)
	big := `{"id":"big","role":"r","target_file":"a","patch":{"pattern":"a","replacement":"` + strings.Repeat("x", 1<<20) + `"}}`
	tests := []struct {
		name    string
		req     req
		code    int
		want    string
		errCode string // result.code
		field   string // result.field
	}{
		{name: "no token", req: req{body: block("a"), headers: map[string]string{"Authorization": ""}}, code: 401, want: "missing or invalid credentials", errCode: "unauthorized"},
		{name: "wrong token", req: req{body: block("a"), headers: map[string]string{"Authorization": "Bearer nope"}}, code: 401, want: "invalid credentials"},
		{name: "bad signature", req: req{body: block("a"), headers: map[string]string{"Authorization": "", auth.SignatureHeader: "sha256=00"}}, code: 401, want: "X-Patchd-Signature"},
		{name: "good bearer, bad signature", req: req{body: block("a"), headers: map[string]string{auth.SignatureHeader: "sha256=00"}}, code: 401, want: "invalid credentials"},
		{name: "content type", req: req{body: block("a"), headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, code: 415, want: `unsupported Content-Type "application/x-www-form-urlencoded"`, errCode: "content_type_unsupported"},
		{name: "malformed", req: req{body: `{"id": "a",`}, code: 400, want: "malformed JSON", errCode: "json_malformed"},
		{name: "not an object", req: req{body: `[1]`}, code: 400, want: "malformed JSON"},
		{name: "missing id", req: req{body: `{}`}, code: 400, want: "Missing required field: id", errCode: "field_missing", field: "id"},
		{name: "missing role first", req: req{body: `{"id":"a"}`}, code: 400, want: "Missing required field: role"},
		{name: "missing target", req: req{body: `{"id":"a","role":"r"}`}, code: 400, want: "Missing required field: target_file", errCode: "field_missing", field: "target_file"},
		{name: "missing patch", req: req{body: `{"id":"a","role":"r","target_file":"x"}`}, code: 400, want: "Missing required field: patch"},
		{name: "bad regex", req: req{body: `{"id":"a","role":"r","target_file":"x","patch":{"pattern":"(","replacement":""}}`}, code: 400, want: "Invalid field: patch.pattern", errCode: "field_invalid", field: "patch.pattern"},
		{name: "absolute path", req: req{body: `{"id":"a","role":"r","target_file":"/etc/passwd","patch":{"pattern":"a","replacement":""}}`}, code: 400, want: `target_file: path "/etc/passwd": is absolute`, errCode: "path_outside_workspace", field: "target_file"},
		{name: "dotdot", req: req{body: `{"id":"a","role":"r","target_file":"../x","patch":{"pattern":"a","replacement":""}}`}, code: 400, want: "escapes the workspace", errCode: "path_outside_workspace", field: "target_file"},
		{name: "git internals", req: req{body: `{"id":"a","role":"r","target_file":".git/config","patch":{"pattern":"a","replacement":""}}`}, code: 400, want: "git internals", errCode: "path_git_internals", field: "target_file"},
		{name: "too big", req: req{body: big}, code: 413, want: "body too large: the limit is 1048576 bytes", errCode: "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.post(tt.req)
			if rec.Code != tt.code {
				t.Fatalf("POST /webhook = %d %s, want %d", rec.Code, rec.Body, tt.code)
			}
			a := decode(t, rec)
			if a.Status != "error" || a.Result.Success || !strings.Contains(a.Result.Error, tt.want) {
				t.Errorf("answer = %+v, want an error containing %q", a, tt.want)
			}
			if tt.errCode != "" && (a.Result.Code != tt.errCode || a.Result.Field != tt.field) {
				t.Errorf("code, field = %q, %q, want %q, %q", a.Result.Code, a.Result.Field, tt.errCode, tt.field)
			}
		})
	}
	if st := f.store.Stats(); st.Total != 0 {
		t.Errorf("store holds %d patches after refusals, want 0", st.Total)
	}
}

func TestWebhookAcceptIdempotentConflict(t *testing.T) {
	f := newFixture(t, nil)
	rec := f.post(req{body: block("P8.13.22")})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("first POST = %d %s, want 202", rec.Code, rec.Body)
	}
	want := `{"status":"accepted","result":{"success":true,"patch_id":"P8.13.22","state":"queued"}}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	rec = f.post(req{body: block("P8.13.22")})
	if a := decode(t, rec); rec.Code != 200 || !a.Result.Duplicate || a.Result.State != "queued" {
		t.Errorf("same id and body again = %d %s, want 200 with the existing state", rec.Code, rec.Body)
	}
	rec = f.post(req{body: strings.Replace(block("P8.13.22"), `"d"`, `"other"`, 1)})
	want = `{"status":"error","result":{"success":false,"error":"patch id \"P8.13.22\" was already used for a different body (state queued); use a new id (only a patch that failed takes another body under its id)","code":"id_conflict","field":"id"}}`
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 409 || got != want {
		t.Errorf("same id, other body = %d %s, want 409 %s", rec.Code, got, want)
	}
}

func TestWebhookSignatureAlone(t *testing.T) {
	f := newFixture(t, nil)
	body := block("signed")
	rec := f.post(req{body: body, headers: map[string]string{"Authorization": "", auth.SignatureHeader: auth.Sign([]byte(body), testToken)}})
	if rec.Code != http.StatusAccepted {
		t.Errorf("signed POST without bearer = %d %s, want 202", rec.Code, rec.Body)
	}
}

func TestWebhookNoAuth(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Token = "" })
	if rec := f.post(req{body: block("a"), headers: map[string]string{"Authorization": ""}}); rec.Code != http.StatusAccepted {
		t.Errorf("POST with auth off = %d, want 202", rec.Code)
	}
}

func TestWebhookRateLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RateLimit, o.RateBurst = 0.001, 2 })
	codes := []int{}
	for i := range 3 {
		codes = append(codes, f.post(req{body: block(string(rune('a' + i)))}).Code)
	}
	if codes[0] != 202 || codes[1] != 202 || codes[2] != 429 {
		t.Fatalf("codes = %v, want [202 202 429]", codes)
	}
	rec := f.post(req{body: block("d")})
	if rec.Header().Get("Retry-After") == "" || !strings.Contains(decode(t, rec).Result.Error, "too many requests") {
		t.Errorf("429 answer = %s (Retry-After %q), want a message and Retry-After", rec.Body, rec.Header().Get("Retry-After"))
	}
}

func TestWebhookStoreUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	f.store.Close()
	rec := f.post(req{body: block("late")})
	if a := decode(t, rec); rec.Code != http.StatusServiceUnavailable || a.Result.Code != "store_closed" || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("POST with the store closed = %d %s (Retry-After %q), want 503 store_closed, Retry-After 5", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
}

func TestPatchesEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	for _, id := range []string{"p1", "p2", "p3"} {
		if rec := f.post(req{body: block(id)}); rec.Code != 202 {
			t.Fatalf("POST %s = %d", id, rec.Code)
		}
	}
	get := func(path string, token bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if token {
			r.Header.Set("Authorization", "Bearer "+testToken)
		}
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		return rec
	}
	if rec := get("/patches", false); rec.Code != 401 {
		t.Errorf("GET /patches without token = %d, want 401", rec.Code)
	}
	rec := get("/patches?limit=2", true)
	var l api.PatchList
	json.Unmarshal(rec.Body.Bytes(), &l)
	if rec.Code != 200 || len(l.Patches) != 2 || l.Patches[0].ID != "p3" || l.NextCursor == "" {
		t.Fatalf("GET /patches?limit=2 = %d %s, want p3, p2 and a cursor", rec.Code, rec.Body)
	}
	rec = get("/patches?limit=2&cursor="+l.NextCursor, true)
	l = api.PatchList{}
	json.Unmarshal(rec.Body.Bytes(), &l)
	if len(l.Patches) != 1 || l.Patches[0].ID != "p1" || l.NextCursor != "" {
		t.Errorf("second page = %s, want p1 alone", rec.Body)
	}
	if rec := get("/patches?limit=0", true); rec.Code != 400 {
		t.Errorf("limit=0 = %d, want 400", rec.Code)
	}
	if rec := get("/patches/p2", true); rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"state":"queued"`)) {
		t.Errorf("GET /patches/p2 = %d %s", rec.Code, rec.Body)
	}
	if rec := get("/patches/nope", true); rec.Code != 404 || !strings.Contains(rec.Body.String(), `nope`) || decode(t, rec).Result.Code != "patch_not_found" {
		t.Errorf("GET /patches/nope = %d %s, want 404 naming it, code patch_not_found", rec.Code, rec.Body)
	}
	if rec := get("/patches?state=done", true); rec.Code != 400 || decode(t, rec).Result.Field != "state" {
		t.Errorf("state=done = %d %s, want 400 naming the field", rec.Code, rec.Body)
	}
}

// TestOpenAPI: the document is OpenAPI 3.1 with a server and bearer auth,
// and lists every route the server has.
func TestOpenAPI(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Address = "127.0.0.1:5555" })
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/openapi.json", nil)
	r.Host = "localhost:5555" // the document names where we listen, not this
	f.srv.ServeHTTP(rec, r)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Servers []struct{ URL string }    `json:"servers"`
		Paths   map[string]map[string]any `json:"paths"`
		Comp    struct {
			Sec map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Servers) != 1 || doc.Servers[0].URL != "http://127.0.0.1:5555" {
		t.Errorf("openapi, servers = %q, %v", doc.OpenAPI, doc.Servers)
	}
	if s := doc.Comp.Sec["bearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v, want http bearer", s)
	}
	for _, route := range []string{"POST /webhook", "POST /patches/preview", "GET /patches", "GET /patches/{id}", "POST /patches/{id}/revert", "GET /health", "GET /ready"} {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("openapi.json lacks %s", route)
		}
		// Every documented route exists on the server.
		_, pattern := f.srv.mux.Handler(httptest.NewRequest(method, strings.ReplaceAll(path, "{id}", "x"), nil))
		if pattern == "" {
			t.Errorf("documented %s is not served", route)
		}
	}
}

func TestPreview(t *testing.T) {
	f := newFixture(t, nil)
	os.MkdirAll(filepath.Join(f.ws.Dir(), "src"), 0o755)
	os.WriteFile(filepath.Join(f.ws.Dir(), "src", "app.py"), []byte("a\n"), 0o644)
	post := func(body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/patches/preview", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		return rec
	}
	rec := post(block("ok"))
	var a PreviewAnswer
	json.Unmarshal(rec.Body.Bytes(), &a)
	if rec.Code != 200 || !a.Result.Success || a.Status != "preview" || a.Result.PatchID != "ok" || !strings.Contains(a.Result.Diff, "+b") || a.Result.Files[0] != "src/app.py" {
		t.Errorf("preview = %d %s, want 200 with the diff", rec.Code, rec.Body)
	}
	fails := `{"id":"fails","role":"r","target_file":"src/app.py","patch":{"search":"zzz","replace":"y"}}`
	if rec := post(fails); rec.Code != 422 || !strings.Contains(rec.Body.String(), "search text not found in src/app.py") ||
		decode(t, rec).Result.Code != "match_not_found" || decode(t, rec).Result.Field != "patch.search" {
		t.Errorf("preview of a failing patch = %d %s, want 422 with the reason, match_not_found, patch.search", rec.Code, rec.Body)
	}
	if rec := post(`{"id":"x"}`); rec.Code != 400 {
		t.Errorf("preview of an invalid block = %d, want 400", rec.Code)
	}
	if st := f.store.Stats(); st.Total != 0 {
		t.Errorf("preview stored %d patches, want none", st.Total)
	}
}
