package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/patchd/patchd/internal/apiclient"
	"github.com/patchd/patchd/internal/daemon"
	"github.com/patchd/patchd/internal/mcpserver"
	"github.com/patchd/patchd/internal/version"
)

// runMCP is `patchd mcp`: MCP on standard input and output, for a client
// that launches it (Claude Code, Cursor, Codex CLI). It serves through
// the workspace's daemon, started as `patchd start` would if none runs,
// so that its patches share the daemon's queue, history and lock. Nothing
// but the protocol is written to standard output: messages go to
// standard error, the daemon's output to its log.
func runMCP(ctx context.Context, env *Env, args []string) error {
	cfg, rest, err := parse(env, "mcp", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("mcp", rest); err != nil {
		return err
	}
	svc := apiclient.New(apiclient.Options{Resolve: func(ctx context.Context) (apiclient.Endpoint, error) {
		// The daemon runs with exactly the flags we were given.
		st, _, err := daemon.Start(ctx, cfg, env.Exe, append([]string{"run"}, args...))
		if err != nil {
			var se *daemon.StartError
			if errors.As(err, &se) {
				msg := "start the daemon: " + se.Reason
				if se.LogTail != "" {
					msg += fmt.Sprintf("; last lines of %s:\n%s", cfg.LogPath(), se.LogTail)
				}
				return apiclient.Endpoint{}, errors.New(msg)
			}
			return apiclient.Endpoint{}, fmt.Errorf("start the daemon: %w", err)
		}
		return apiclient.Endpoint{Base: "http://" + st.Address, Token: daemon.ProbeToken(cfg)}, nil
	}})
	if err := svc.Connect(ctx); err != nil {
		return exit(ExitFailed, "mcp: %v", err)
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, ok := env.Stdin.(io.ReadCloser)
	if !ok {
		in = io.NopCloser(env.Stdin)
	}
	t := &mcp.IOTransport{Reader: in, Writer: nopCloser{env.Stdout}}
	err = mcpserver.ServeStdio(ctx, mcpserver.Options{Service: svc, Version: version.Version, Logger: log}, t)
	if err != nil && ctx.Err() == nil && !isClosed(err) {
		return exit(ExitFailed, "mcp: %v", err)
	}
	return nil
}

// nopCloser keeps the SDK from closing standard output.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// isClosed reports the end of a session the client closed.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, mcp.ErrConnectionClosed) || strings.Contains(err.Error(), "closed")
}
