package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// TestWebhookWaitRefused: a wait out of range is refused (400, field
// wait, or wait_seconds in the block) before anything is stored.
func TestWebhookWaitRefused(t *testing.T) {
	f := newFixture(t, nil)
	for _, v := range []string{"0", "-1s", "41s", "1h", "abc", "1e9", "NaN"} {
		hr := httptest.NewRequest("POST", "/webhook?wait="+v, strings.NewReader(block("W1")))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, hr)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"code":"field_invalid","field":"wait"`) ||
			!strings.Contains(rec.Body.String(), "at most 40s") {
			t.Errorf("POST /webhook?wait=%s = %d %s, want 400 naming wait and its bound", v, rec.Code, rec.Body)
		}
	}
	body := strings.Replace(block("W2"), `"role"`, `"wait_seconds":90,"role"`, 1)
	if rec := f.post(req{body: body}); rec.Code != 400 || !strings.Contains(rec.Body.String(), `"field":"wait_seconds"`) {
		t.Errorf("wait_seconds 90 = %d %s, want 400 naming wait_seconds", rec.Code, rec.Body)
	}
	if st := f.store.Stats(); st.Total != 0 {
		t.Errorf("%d patches stored, want none", st.Total)
	}
}

// waitAnswer is the body of a webhook answer that waited.
type waitAnswer struct {
	Status string `json:"status"`
	Result struct {
		Success bool   `json:"success"`
		PatchID string `json:"patch_id"`
		State   string `json:"state"`
		Note    string `json:"note"`
	} `json:"result"`
}

// serveReal serves the fixture's handler with the daemon's kind of
// timeouts, shortened to read and write.
func serveReal(t *testing.T, f *fixture, timeout time.Duration) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = timeout, timeout
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func postWait(t *testing.T, url, query, body string) (int, waitAnswer) {
	t.Helper()
	hr, _ := http.NewRequest("POST", url+"/webhook"+query, strings.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := (&http.Client{Timeout: 25 * time.Second}).Do(hr)
	if err != nil {
		t.Fatalf("POST /webhook%s: %v", query, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var a waitAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("POST /webhook%s = %d %q: %v", query, resp.StatusCode, data, err)
	}
	return resp.StatusCode, a
}

// TestWebhookWaitOutlivesTimeouts: a wait longer than the server's read
// and write timeouts still gets its answer: 202, the patch still queued
// (no worker runs here), and a note saying to call getPatch.
func TestWebhookWaitOutlivesTimeouts(t *testing.T) {
	f := newFixture(t, nil)
	url := serveReal(t, f, 300*time.Millisecond)
	for _, tt := range []struct{ query, body string }{
		{"?wait=1s", block("T1")},
		{"", strings.Replace(block("T2"), `"role"`, `"wait_seconds":1,"role"`, 1)},
	} {
		code, a := postWait(t, url, tt.query, tt.body)
		if code != 202 || !a.Result.Success || a.Result.State != api.StateQueued ||
			!strings.Contains(a.Result.Note, "not finished within 1s: call getPatch (GET /patches/") {
			t.Errorf("POST /webhook%s = %d %+v; want 202 queued with a note to call getPatch", tt.query, code, a)
		}
	}
}

// TestWebhookWaitEnds: EndWaits (the daemon stopping) answers a waiting
// request at once, with the patch stored and queued.
func TestWebhookWaitEnds(t *testing.T) {
	f := newFixture(t, nil)
	url := serveReal(t, f, 30*time.Second)
	go func() {
		for {
			if _, ok := f.store.Get("E1"); ok {
				f.srv.EndWaits()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	// The client gives up after 25 s, before the wait of 40 s would end.
	code, a := postWait(t, url, "?wait=40s", block("E1"))
	if code != 202 || a.Result.State != api.StateQueued || !strings.Contains(a.Result.Note, "restarting or stopping") {
		t.Errorf("a wait ended by EndWaits = %d %+v; want 202 queued, saying patchd stops", code, a)
	}
	if code, a := postWait(t, url, "?wait=40s", block("E2")); code != 202 || a.Result.State != api.StateQueued {
		t.Errorf("a wait after EndWaits = %d %+v; want 202 at once", code, a)
	}
}
