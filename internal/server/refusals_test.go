package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer is a JSON log kept in memory for tests, safe for concurrent
// writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records decodes every line written so far.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
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

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestRefusalLogged: a refused request leaves one log line naming the
// client's address, the status and the reason.
func TestRefusalLogged(t *testing.T) {
	var logs logBuffer
	f := newFixture(t, func(o *Options) { o.Logger = logs.logger() })
	ts := httptest.NewServer(f.srv)
	defer ts.Close()

	req, _ := http.NewRequest("POST", ts.URL+"/webhook", strings.NewReader(block("a")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /webhook without a token = %d, want 401", resp.StatusCode)
	}
	recs := logs.records(t)
	var found map[string]any
	for _, rec := range recs {
		if rec["msg"] == "request refused" {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("no log line for a 401; the log has %v", recs)
	}
	client, _ := found["client"].(string)
	reason, _ := found["reason"].(string)
	if !strings.HasPrefix(client, "127.0.0.1:") || found["status"] != 401.0 || found["path"] != "/webhook" ||
		!strings.Contains(reason, "missing or invalid credentials") {
		t.Errorf("log line %v, want the client address, status 401, the path and the reason", found)
	}
}

// TestRefusalFloodBounded: 10,000 refused requests write a bounded number
// of log lines, and the lines left out are counted in a summary line, so a
// flood can neither fill the disk nor go unnoticed.
func TestRefusalFloodBounded(t *testing.T) {
	const flood, senders = 10000, 8
	var logs logBuffer
	f := newFixture(t, func(o *Options) { o.Logger = logs.logger() })
	ts := httptest.NewServer(f.srv)
	defer ts.Close()

	begin := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.Client()
			for range flood / senders {
				resp, err := c.Get(ts.URL + "/patches")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET /patches without a token = %d, want 401", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(begin)

	// The last summary comes at most one interval after the flood.
	var lines, logged, suppressed int
	waitUntil := time.Now().Add(refusalSummaryEvery + 5*time.Second)
	for {
		lines, logged, suppressed = 0, 0, 0
		for _, rec := range logs.records(t) {
			lines++
			switch rec["msg"] {
			case "request refused":
				logged++
			default:
				if n, ok := rec["suppressed"].(float64); ok {
					suppressed += int(n)
				}
			}
		}
		if logged+suppressed >= flood || time.Now().After(waitUntil) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(begin).Seconds()
	bound := refusalBurst + int(elapsed*refusalRate) + int(elapsed/refusalSummaryEvery.Seconds()) + 2
	t.Logf("%d refusals in %s: %d log lines (%d one by one, %d counted in summaries), bound %d", flood, took.Round(time.Millisecond), lines, logged, suppressed, bound)
	if lines > bound {
		t.Errorf("%d log lines for %d refusals, want at most %d", lines, flood, bound)
	}
	if logged+suppressed != flood {
		t.Errorf("%d refusals logged and %d counted as suppressed, want %d in all", logged, suppressed, flood)
	}
}
