package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/server"
)

// Probe GETs /health at address (host:port) and decodes it. With the token
// the answer has the details (pid, version, system, queue); without it only
// the status and uptime. A non-2xx answer is an error that carries the body.
func Probe(ctx context.Context, address, token string) (server.Health, error) {
	var h server.Health
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+address+"/health", nil)
	if err != nil {
		return h, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, fmt.Errorf("GET /health on %s: %w", address, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return h, fmt.Errorf("GET /health on %s: %w", address, err)
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("GET /health on %s: answer is not JSON: %w", address, err)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("GET /health on %s: %s: status %q", address, resp.Status, h.Status)
	}
	return h, nil
}

// ProbeToken is the token a command probing /health sends: the instance's,
// from its state directory ("" under --no-auth or when there is none yet).
func ProbeToken(cfg *config.Config) string {
	if cfg.NoAuth {
		return ""
	}
	tok, _ := auth.ReadToken(cfg.TokenPath())
	return tok
}
