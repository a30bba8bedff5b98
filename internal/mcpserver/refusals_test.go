package mcpserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/patchd/patchd/internal/server"
)

// records decodes every JSON log line written so far.
func records(t *testing.T, logs *lockedBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestMCPRefusalLogged: what the MCP door refuses itself (the SDK's 415
// for a body that is not JSON, its 400 for a request without the Accept
// it needs) is logged like every other refusal, with the client's
// address, the status, the path and the reason (issue 10, finding 20:
// refused requests leave a trace), and a successful call is not.
func TestMCPRefusalLogged(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	const testToken = "test-token"
	ts := httptest.NewServer(server.New(server.Options{Token: testToken, MaxBodyBytes: 1 << 20, Logger: log,
		MCP: Handler(Options{Version: "test"})}))
	defer ts.Close()
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	post := func(contentType, accept string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(initialize))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", contentType)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	refused := func() []map[string]any {
		var out []map[string]any
		for _, rec := range records(t, &logs) {
			if rec["msg"] == "request refused" {
				out = append(out, rec)
			}
		}
		return out
	}
	both := "application/json, text/event-stream"
	if code := post("application/json", both); code != http.StatusOK {
		t.Fatalf("POST /mcp initialize = %d, want 200", code)
	}
	if got := refused(); len(got) != 0 {
		t.Fatalf("a successful MCP call logged refusals: %v", got)
	}
	for _, tt := range []struct {
		contentType, accept string
		status              int
		reason              string
	}{
		{"text/plain", both, http.StatusUnsupportedMediaType, "Content-Type"},
		{"application/json", "", http.StatusBadRequest, "Accept"},
	} {
		if code := post(tt.contentType, tt.accept); code != tt.status {
			t.Fatalf("POST /mcp (Content-Type %q, Accept %q) = %d, want %d", tt.contentType, tt.accept, code, tt.status)
		}
		got := refused()
		if len(got) == 0 {
			t.Fatalf("no log line for the MCP door's %d; the log has %s", tt.status, logs.String())
		}
		last := got[len(got)-1]
		client, _ := last["client"].(string)
		reason, _ := last["reason"].(string)
		if last["status"] != float64(tt.status) || last["path"] != "/mcp" || !strings.HasPrefix(client, "127.0.0.1:") ||
			!strings.Contains(reason, tt.reason) || strings.Contains(reason, "\n") {
			t.Errorf("log line %v, want status %d, path /mcp, the client and a one-line reason naming %s", last, tt.status, tt.reason)
		}
	}
}
