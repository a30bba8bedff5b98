package mcpserver

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// lockedBuffer is a log destination the server's goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestQuietLog: serving requests over HTTP (a session each, stateless)
// writes nothing to patchd's log at Info: the SDK's session chatter is
// left out, its warnings would not be.
func TestQuietLog(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(Handler(Options{Logger: log, Version: "test"}))
	defer srv.Close()
	ctx := context.Background()
	for _, rev := range []string{"2026-07-28", "2025-11-25"} {
		c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "0"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, &mcp.ClientSessionOptions{ProtocolVersion: rev})
		if err != nil {
			t.Fatal(err)
		}
		res, err := cs.ListTools(ctx, nil)
		if err != nil || len(res.Tools) != 7 {
			t.Fatalf("list tools at %s: %v, %d tools", rev, err, len(res.Tools))
		}
		cs.Close()
	}
	if s := buf.String(); strings.Contains(s, "level=INFO") || strings.Contains(s, "level=DEBUG") {
		t.Errorf("the log has the SDK's chatter:\n%s", s)
	}
	sdkLogger(log).Warn("kept")
	if !strings.Contains(buf.String(), "level=WARN msg=kept component=mcp") {
		t.Errorf("a warning was not logged:\n%s", buf.String())
	}
}
