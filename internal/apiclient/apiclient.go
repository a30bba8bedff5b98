// Package apiclient is an api.Service over a running daemon's HTTP API: a
// door that cannot hold the workspace itself (`patchd mcp` on stdio)
// serves through it, so that its patches join the daemon's one queue,
// history and lock with the webhook's and the CLI's.
//
// Every answer is mapped back: a refusal becomes the *api.Error the
// daemon's service gave (its Code, Field and Message, and the Kind its
// HTTP status stands for), so the door renders it as it would the
// service's own.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// CodeUnreachable is the code of a call that could not reach the daemon
// (nor start one).
const CodeUnreachable = "daemon_unreachable"

// maxAnswer bounds an answer read from the daemon.
const maxAnswer = 64 << 20

// Endpoint is where the daemon answers.
type Endpoint struct {
	// Base is its URL, like http://127.0.0.1:5555.
	Base string
	// Token is its bearer token; "" under --no-auth.
	Token string
}

// Options configures a Client.
type Options struct {
	// Resolve finds the daemon, starting it if none runs. It is called
	// before the first request, and again when the daemon cannot be
	// reached (it stopped, or moved).
	Resolve func(ctx context.Context) (Endpoint, error)
	// HTTP sends the requests; nil is a client with a 90 s timeout.
	HTTP *http.Client
	// PollEvery is how often Wait asks for a patch's state at first (it
	// slows down to 1 s); 0 is 50 ms.
	PollEvery time.Duration
}

// Client is an api.Service over HTTP. It is safe for concurrent use.
type Client struct {
	opts Options
	mu   sync.Mutex
	ep   *Endpoint
}

var _ api.Service = (*Client)(nil)

// New returns a Client; it resolves the daemon on its first call.
func New(opts Options) *Client {
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 90 * time.Second}
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 50 * time.Millisecond
	}
	return &Client{opts: opts}
}

// Connect resolves the daemon now (starting it if none runs), so that a
// daemon that cannot start is told before any call.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.endpoint(ctx, true)
	return err
}

// endpoint is the daemon's endpoint, resolved anew when fresh is set.
func (c *Client) endpoint(ctx context.Context, fresh bool) (Endpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ep != nil && !fresh {
		return *c.ep, nil
	}
	ep, err := c.opts.Resolve(ctx)
	if err != nil {
		c.ep = nil
		return Endpoint{}, &api.Error{Kind: api.KindUnavailable, Code: CodeUnreachable, Message: "reach the patchd daemon: " + err.Error(), Err: err}
	}
	c.ep = &ep
	return ep, nil
}

// do sends a request and returns the answer's status and body. A request
// whose connection could not be made (nothing was sent) is sent once more
// to the daemon resolved again (started, if none runs), unless follow is
// set: a call that only follows a patch does not start a daemon someone
// stopped.
func (c *Client) do(ctx context.Context, method, path string, body []byte, follow bool) (int, []byte, error) {
	ep, err := c.endpoint(ctx, false)
	if err != nil {
		return 0, nil, err
	}
	code, data, err := c.send(ctx, ep, method, path, body)
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" && ctx.Err() == nil && !follow {
		if ep, err = c.endpoint(ctx, true); err != nil {
			return 0, nil, err
		}
		code, data, err = c.send(ctx, ep, method, path, body)
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, &api.Error{Kind: api.KindUnavailable, Code: CodeUnreachable, Message: fmt.Sprintf("%s %s: %v", method, path, err), Err: err}
	}
	return code, data, nil
}

func (c *Client) send(ctx context.Context, ep Endpoint, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ep.Base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if method == http.MethodPost {
		// Every POST states JSON, a revert's empty one too: the daemon
		// refuses POSTs a web page could have sent.
		req.Header.Set("Content-Type", "application/json")
	}
	if ep.Token != "" {
		req.Header.Set("Authorization", "Bearer "+ep.Token)
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return resp.StatusCode, data, err
}

// call sends a request and decodes a 2xx answer into v, or returns the
// refusal as an *api.Error.
func (c *Client) call(ctx context.Context, method, path string, body []byte, v any) error {
	return c.callFollow(ctx, method, path, body, v, false)
}

// callFollow is call, with do's follow.
func (c *Client) callFollow(ctx context.Context, method, path string, body []byte, v any, follow bool) error {
	code, data, err := c.do(ctx, method, path, body, follow)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return refusal(code, data)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &api.Error{Kind: api.KindInternal, Code: api.CodeInternal, Message: fmt.Sprintf("%s %s: read the daemon's answer: %v", method, path, err), Err: err}
	}
	return nil
}

// refusal is the *api.Error of a refusal the daemon answered with status.
func refusal(status int, body []byte) *api.Error {
	var a struct {
		Result struct {
			Error string `json:"error"`
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"result"`
	}
	e := &api.Error{Kind: kindOf(status), Code: api.CodeInternal}
	if json.Unmarshal(body, &a) == nil && a.Result.Error != "" {
		e.Message, e.Field = a.Result.Error, a.Result.Field
		if a.Result.Code != "" {
			e.Code = a.Result.Code
		}
		return e
	}
	e.Message = fmt.Sprintf("the daemon answered HTTP %d: %s", status, bytes.TrimSpace(body))
	return e
}

// kindOf is the Kind an HTTP status of the daemon stands for: the inverse
// of api.Kind.HTTPStatus.
func kindOf(status int) api.Kind {
	switch status {
	case http.StatusBadRequest:
		return api.KindInvalid
	case http.StatusUnauthorized:
		return api.KindUnauthorized
	case http.StatusForbidden:
		return api.KindForbidden
	case http.StatusNotFound:
		return api.KindNotFound
	case http.StatusConflict:
		return api.KindConflict
	case http.StatusGone:
		return api.KindGone
	case http.StatusRequestEntityTooLarge:
		return api.KindTooLarge
	case http.StatusUnsupportedMediaType:
		return api.KindUnsupported
	case http.StatusUnprocessableEntity:
		return api.KindUnprocessable
	case http.StatusTooManyRequests:
		return api.KindRateLimited
	case http.StatusServiceUnavailable:
		return api.KindUnavailable
	}
	return api.KindInternal
}

// Submit is POST /webhook.
func (c *Client) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResult, error) {
	var a struct {
		Result api.SubmitResult `json:"result"`
	}
	err := c.call(ctx, http.MethodPost, "/webhook", req.Body, &a)
	return a.Result, err
}

// Preview is POST /patches/preview.
func (c *Client) Preview(ctx context.Context, req api.PreviewRequest) (api.PreviewResult, error) {
	var a struct {
		Result api.PreviewResult `json:"result"`
	}
	err := c.call(ctx, http.MethodPost, "/patches/preview", req.Body, &a)
	return a.Result, err
}

// Get is GET /patches/{id}.
func (c *Client) Get(ctx context.Context, id string) (api.PatchView, error) {
	var p api.PatchView
	err := c.call(ctx, http.MethodGet, "/patches/"+url.PathEscape(id), nil, &p)
	return p, err
}

// List is GET /patches.
func (c *Client) List(ctx context.Context, o api.ListOptions) (api.PatchList, error) {
	q := url.Values{}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.State != "" {
		q.Set("state", o.State)
	}
	path := "/patches"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l api.PatchList
	err := c.call(ctx, http.MethodGet, path, nil, &l)
	return l, err
}

// Revert is POST /patches/{id}/revert, waiting for a busy worker as long
// as ctx allows (at most api.MaxRevertWait), then the patch as it stands.
func (c *Client) Revert(ctx context.Context, id string) (api.PatchView, error) {
	path := "/patches/" + url.PathEscape(id) + "/revert"
	if dl, ok := ctx.Deadline(); ok {
		// The server waits less than we do, so that its answer arrives.
		wait := min(time.Until(dl)-time.Second, api.MaxRevertWait).Truncate(time.Millisecond)
		if wait < time.Millisecond {
			wait = time.Millisecond
		}
		path += "?" + url.Values{"wait": {wait.String()}}.Encode()
	}
	if err := c.call(ctx, http.MethodPost, path, nil, nil); err != nil {
		return api.PatchView{}, err
	}
	return c.Get(context.WithoutCancel(ctx), id)
}

// Drop is DELETE /patches/{id}, then the patch as it stands.
func (c *Client) Drop(ctx context.Context, id string) (api.PatchView, error) {
	if err := c.call(ctx, http.MethodDelete, "/patches/"+url.PathEscape(id), nil, nil); err != nil {
		return api.PatchView{}, err
	}
	return c.Get(context.WithoutCancel(ctx), id)
}

// Wait asks for the patch until it is finished or ctx ends (then it
// returns the patch as it last stood and ctx's error). A daemon that
// stops meanwhile is not started again: Wait returns daemon_unreachable.
func (c *Client) Wait(ctx context.Context, id string) (api.PatchView, error) {
	every := c.opts.PollEvery
	var last api.PatchView
	for {
		var p api.PatchView
		err := c.callFollow(ctx, http.MethodGet, "/patches/"+url.PathEscape(id), nil, &p, true)
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, err
		}
		if last = p; api.Finished(p.State) {
			return p, nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, ctx.Err()
		case <-t.C:
		}
		every = min(every*2, time.Second)
	}
}

// Status is the queue of GET /health (with the token). LastEventID is
// not served over HTTP: it is 0.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var h struct {
		Queue *api.QueueStats `json:"queue"`
	}
	if err := c.call(ctx, http.MethodGet, "/health", nil, &h); err != nil {
		return api.Status{}, err
	}
	var st api.Status
	if h.Queue != nil {
		st.Queue = *h.Queue
	}
	return st, nil
}

// Subscribe is not served over the HTTP API yet.
func (c *Client) Subscribe(context.Context, uint64) (api.Subscription, error) {
	return nil, api.Errorf(api.KindUnavailable, api.CodeInternal, "", "events are not served over the daemon's HTTP API yet")
}

// ReadFile is GET /file.
func (c *Client) ReadFile(ctx context.Context, req api.ReadFileRequest) (api.FileText, error) {
	q := url.Values{"path": {req.Path}}
	if req.StartLine != 0 {
		q.Set("start_line", strconv.Itoa(req.StartLine))
	}
	if req.EndLine != 0 {
		q.Set("end_line", strconv.Itoa(req.EndLine))
	}
	var ft api.FileText
	err := c.call(ctx, http.MethodGet, "/file?"+q.Encode(), nil, &ft)
	return ft, err
}

// ListFiles is GET /files.
func (c *Client) ListFiles(ctx context.Context, req api.ListFilesRequest) (api.FileList, error) {
	q := url.Values{}
	if req.Path != "" {
		q.Set("path", req.Path)
	}
	if req.Glob != "" {
		q.Set("glob", req.Glob)
	}
	if req.Limit != 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	path := "/files"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var fl api.FileList
	err := c.call(ctx, http.MethodGet, path, nil, &fl)
	return fl, err
}
