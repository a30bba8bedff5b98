package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/jetq"
	"github.com/patchd/patchd/internal/patch"
)

// Options configure a Service.
type Options struct {
	// JS is the JetStream context of a connection (jetq.Connect); the
	// streams and buckets exist (jetq.Ensure). Required.
	JS jetstream.JetStream
	// Workspaces are workspaces that exist even before a runner of
	// theirs has registered (--workspaces): patches to them queue.
	Workspaces []string
	// CtlTimeout bounds a request to a runner; 0 means DefaultCtlTimeout.
	CtlTimeout time.Duration
	// MaxEdits bounds the edits of a block at intake, as the daemon's
	// --max-edits (0: patch.MaxEdits); MaxEditsSetting names the setting.
	MaxEdits        int
	MaxEditsSetting string
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultCtlTimeout is how long a request to a runner waits for its
// answer at most (a shorter ctx waits less).
const DefaultCtlTimeout = 25 * time.Second

// Service implements api.Service over JetStream. A Service from New
// serves every workspace; Bind gives one bound to a workspace.
type Service struct {
	*core
	// ws is the workspace this Service is bound to, "" for none.
	ws string
}

// core is what the Services of one gateway share.
type core struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	patches  jetstream.KeyValue
	wsKV     jetstream.KeyValue
	views    jetstream.Stream // the stream under patches
	events   jetstream.Stream
	work     jetstream.Stream
	listed   []string
	ctlWait  time.Duration
	parse    patch.ParseOptions
	log      *slog.Logger
	viewsSub string // the subject prefix of patches' keys
}

var _ api.Service = (*Service)(nil)

// New opens the buckets and streams and returns a Service for every
// workspace.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.JS == nil {
		return nil, errors.New("gateway: no JetStream connection")
	}
	for _, ws := range o.Workspaces {
		if err := jetq.CheckWorkspace(ws); err != nil {
			return nil, fmt.Errorf("gateway: --workspaces: %w", err)
		}
	}
	c := &core{js: o.JS, nc: o.JS.Conn(), listed: slices.Clone(o.Workspaces), ctlWait: o.CtlTimeout, log: o.Logger,
		parse:    patch.ParseOptions{MaxEdits: o.MaxEdits, MaxEditsSetting: o.MaxEditsSetting},
		viewsSub: "$KV." + jetq.BucketPatches + "."}
	if c.ctlWait <= 0 {
		c.ctlWait = DefaultCtlTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if c.patches, err = o.JS.KeyValue(ctx, jetq.BucketPatches); err != nil {
		return nil, fmt.Errorf("gateway: bucket %s: %w", jetq.BucketPatches, err)
	}
	if c.wsKV, err = o.JS.KeyValue(ctx, jetq.BucketWorkspaces); err != nil {
		return nil, fmt.Errorf("gateway: bucket %s: %w", jetq.BucketWorkspaces, err)
	}
	if c.views, err = o.JS.Stream(ctx, "KV_"+jetq.BucketPatches); err != nil {
		return nil, fmt.Errorf("gateway: the stream of bucket %s: %w", jetq.BucketPatches, err)
	}
	if c.events, err = o.JS.Stream(ctx, jetq.StreamEvents); err != nil {
		return nil, fmt.Errorf("gateway: stream %s: %w", jetq.StreamEvents, err)
	}
	if c.work, err = o.JS.Stream(ctx, jetq.StreamWork); err != nil {
		return nil, fmt.Errorf("gateway: stream %s: %w", jetq.StreamWork, err)
	}
	return &Service{core: c}, nil
}

// Bind returns a Service bound to workspace ws (checked with
// jetq.CheckWorkspace, not for existence): its Submit takes patches
// without a "workspace" field, and it answers for ws only.
func (s *Service) Bind(ws string) (*Service, error) {
	if err := jetq.CheckWorkspace(ws); err != nil {
		return nil, err
	}
	return &Service{core: s.core, ws: ws}, nil
}

// Workspace is the workspace s is bound to, "" for none.
func (s *Service) Workspace() string { return s.ws }

// Workspaces lists the workspaces that exist: those listed in Options
// and those a runner registered, sorted.
func (c *core) Workspaces(ctx context.Context) ([]string, error) {
	keys, err := c.wsKV.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, unavailable(err, "list the workspaces")
	}
	all := slices.Concat(c.listed, keys)
	all = slices.DeleteFunc(all, func(ws string) bool { return jetq.CheckWorkspace(ws) != nil })
	slices.Sort(all)
	return slices.Compact(all), nil
}

// exists refuses a workspace that does not exist, naming those that do.
func (c *core) exists(ctx context.Context, ws string) error {
	if slices.Contains(c.listed, ws) {
		return nil
	}
	_, err := c.wsKV.Get(ctx, ws)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable(err, "look up workspace "+ws)
	}
	all, err := c.Workspaces(ctx)
	if err != nil {
		return err
	}
	known := "none: no runner has registered yet"
	if len(all) > 0 {
		known = strings.Join(all, ", ")
	}
	return &api.Error{Kind: api.KindNotFound, Code: CodeWorkspaceUnknown, Field: "workspace",
		Message: fmt.Sprintf("workspace %q does not exist (workspaces: %s)", ws, known)}
}

// unavailable is the refusal of a NATS operation that failed: the queue
// is unavailable, try again.
func unavailable(err error, what string) *api.Error {
	return &api.Error{Kind: api.KindUnavailable, Code: CodeQueueUnavailable,
		Message: fmt.Sprintf("%s: NATS: %v; try again", what, err), Err: err}
}

// Exists reports (nil) whether workspace ws exists: listed, or
// registered by a runner; else the refusal naming those that do.
func (s *Service) Exists(ctx context.Context, ws string) error {
	if err := jetq.CheckWorkspace(ws); err != nil {
		return err
	}
	return s.exists(ctx, ws)
}
