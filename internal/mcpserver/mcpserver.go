// Package mcpserver is patchd's MCP door: the Model Context Protocol tools
// (apply_patch, preview_patch, read_file, list_files, patch_status,
// list_patches, revert_patch) over an api.Service, served on stdio by `patchd mcp` and over streamable
// HTTP at the daemon's /mcp.
//
// Like the HTTP server it is a thin adapter: each tool reads its input,
// makes its calls to the service, and renders the answer or the refusal.
// A refusal is a tool result with isError set and the message with its
// code, never a protocol error, so that the model reads it and can act on
// it. The protocol itself is the official Go SDK's
// (github.com/modelcontextprotocol/go-sdk).
package mcpserver

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/patchd/patchd/internal/api"
)

// Options configures the MCP server.
type Options struct {
	// Service serves the tools: the daemon's own service for /mcp, a
	// client of the daemon's HTTP API for `patchd mcp`.
	Service api.Service
	// Version is patchd's, for the server's identity.
	Version string
	// Logger receives the SDK's warnings and errors; nil discards them.
	// Over stdio it must not write to standard output.
	Logger *slog.Logger
	// MaxBodyBytes bounds an HTTP request's body (Handler); 0 is the
	// SDK's default.
	MaxBodyBytes int64
	// Ending, when closed, ends every apply_patch wait, now and from then
	// on: each answers the patch's state as it stands, saying patchd is
	// restarting or stopping. The daemon closes it when it begins to stop
	// or to hand over, which must not wait for them. nil never ends.
	Ending <-chan struct{}
}

// instructions tell a client's model how the tools fit together.
const instructions = `patchd applies code patches to one workspace safely: every edit must match the current text exactly once (or it is refused with the closest lines and their numbers), all files of a patch change together or none does, and every applied patch can be reverted byte for byte. Use read_file to see a file's current text with line numbers and list_files to find files, apply_patch to change files (edits across several files in one call are one transaction), preview_patch to see the diff first, patch_status and list_patches for the history, revert_patch to undo. When a patch is refused, read the message: it names the file, quotes the text that did not match and shows the closest lines; send a corrected patch.`

// sdkLogger is the logger the SDK gets: opts.Logger's warnings and
// errors only, marked as MCP's. At Info the SDK logs every session it
// connects and disconnects, which over HTTP (stateless) is every request.
func sdkLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(warnOnly{l.Handler()}).With("component", "mcp")
}

// warnOnly passes on records at Warn and above.
type warnOnly struct{ slog.Handler }

// Enabled reports whether the record is a warning or worse that the
// wrapped handler takes.
func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the filter.
func (h warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the filter.
func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }

// New returns an MCP server with patchd's tools over opts.Service.
func New(opts Options) *mcp.Server {
	logger := sdkLogger(opts.Logger)
	s := mcp.NewServer(&mcp.Implementation{Name: "patchd", Title: "patchd", Version: opts.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: logger})
	t := &tools{svc: opts.Service, ending: opts.Ending}
	t.register(s)
	return s
}

// Handler serves New(opts) over streamable HTTP, in the SDK's stateless
// mode: the only one in which it accepts protocol revision 2026-07-28
// (which has no sessions), and in which it serves 2025-11-25 and earlier
// too, each request with a temporary session. patchd's tools need no
// session: they make no requests of the client.
//
// The caller guards it: the bearer token, Host and Origin are checked by
// the daemon's HTTP server before a request reaches it. So the SDK's own
// localhost Host check is off: it would refuse a tunnel's public name that
// --allowed-host or --public-url admits.
//
// The server is built at the first request, not with the handler: the SDK
// resolves every tool's schemas then (10-20 ms on a 2-core machine, timed
// in a daemon taking over), which was on the path to ready of every
// start, restart and takeover, whether an MCP client ever came or not.
func Handler(opts Options) http.Handler {
	h := sync.OnceValue(func() http.Handler {
		srv := New(opts)
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
			Stateless:                  true,
			JSONResponse:               true,
			Logger:                     sdkLogger(opts.Logger),
			MaxRequestBodyBytes:        opts.MaxBodyBytes,
			DisableLocalhostProtection: true,
		})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h().ServeHTTP(w, r) })
}

// ServeStdio serves New(opts) on t (standard input and output for `patchd
// mcp`) until the client closes it or ctx ends.
func ServeStdio(ctx context.Context, opts Options, t mcp.Transport) error {
	return New(opts).Run(ctx, t)
}
