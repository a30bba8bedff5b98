package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/control"
	"github.com/patchd/patchd/internal/daemon"
)

// apiClient talks to the running daemon's HTTP API, with the address from
// its control socket and the token from the state directory: a user never
// has to copy either.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(ctx context.Context, cfg *config.Config) (*apiClient, error) {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := daemon.Query(qctx, cfg)
	if errors.Is(err, control.ErrNotRunning) {
		return nil, exit(ExitNotRunning, "patchd is not running for %s (start it with 'patchd start')", cfg.StateDir)
	}
	if err != nil {
		return nil, exit(ExitFailed, "%v", err)
	}
	c := &apiClient{base: "http://" + st.Address, http: &http.Client{Timeout: 60 * time.Second}}
	if !cfg.NoAuth {
		tok, err := auth.ReadToken(cfg.TokenPath())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, exit(ExitFailed, "read token: %v", err)
		}
		c.token = tok
	}
	return c, nil
}

// do sends a request and returns the status and body.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil || method == http.MethodPost {
		// Every POST states JSON, also a revert without a body: the
		// daemon refuses POSTs that a web page could have sent.
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data, err
}

// errorOf extracts result.error from a refusal.
func errorOf(body []byte) string {
	var a struct {
		Result struct {
			Error string `json:"error"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &a) == nil && a.Result.Error != "" {
		return a.Result.Error
	}
	return string(bytes.TrimSpace(body))
}
