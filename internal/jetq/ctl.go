package jetq

import (
	"encoding/json"

	"github.com/patchd/patchd/internal/api"
)

// The control operations: requests to CtlSubject(ws, op), answered by the
// workspace's runner (core NATS request/reply, queue group CtlQueue(ws)).
// The request body is the JSON of the api request: PreviewRequest,
// IDRequest (revert, drop), ReadFileRequest, ListFilesRequest.
const (
	OpPreview   = "preview"
	OpRevert    = "revert"
	OpDrop      = "drop"
	OpReadFile  = "read_file"
	OpListFiles = "list_files"
)

// Ops lists the control operations.
func Ops() []string { return []string{OpPreview, OpRevert, OpDrop, OpReadFile, OpListFiles} }

// CtlSubject is the subject of a control request to a workspace.
func CtlSubject(ws, op string) string { return SubjectCtlPrefix + ws + "." + op }

// CtlWildcard is what a workspace's runner subscribes to.
func CtlWildcard(ws string) string { return SubjectCtlPrefix + ws + ".*" }

// CtlQueue is the queue group of a workspace's control subscribers.
func CtlQueue(ws string) string { return "ctl-" + ws }

// IDRequest is the body of a revert or drop request.
type IDRequest struct {
	ID string `json:"id"`
}

// CtlError is a refusal in a control reply: an *api.Error without its
// cause.
type CtlError struct {
	Kind    api.Kind `json:"kind"`
	Code    string   `json:"code"`
	Field   string   `json:"field,omitempty"`
	Message string   `json:"message"`
}

// CtlReply is a control reply: Result, or Error.
type CtlReply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *CtlError       `json:"error,omitempty"`
}

// EncodeReply is the reply to a control request: result's JSON, or err as
// an *api.Error (api.ErrorOf).
func EncodeReply(result any, err error) []byte {
	var r CtlReply
	if err != nil {
		e := api.ErrorOf(err)
		r.Error = &CtlError{Kind: e.Kind, Code: e.Code, Field: e.Field, Message: e.Message}
	} else if b, merr := json.Marshal(result); merr != nil {
		r.Error = &CtlError{Kind: api.KindInternal, Code: api.CodeInternal, Message: "encode the reply: " + merr.Error()}
	} else {
		r.Result = b
	}
	b, _ := json.Marshal(r) // a struct of strings and raw JSON always encodes
	return b
}

// DecodeReply reads a control reply into result, or returns its refusal
// as an *api.Error.
func DecodeReply(data []byte, result any) error {
	var r CtlReply
	if err := json.Unmarshal(data, &r); err != nil {
		return api.Errorf(api.KindInternal, api.CodeInternal, "", "control reply: %v", err)
	}
	if r.Error != nil {
		kind := r.Error.Kind
		if kind == "" {
			kind = api.KindInternal
		}
		return &api.Error{Kind: kind, Code: r.Error.Code, Field: r.Error.Field, Message: r.Error.Message}
	}
	if r.Result == nil {
		return api.Errorf(api.KindInternal, api.CodeInternal, "", "control reply: neither result nor error")
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return api.Errorf(api.KindInternal, api.CodeInternal, "", "control reply: %v", err)
	}
	return nil
}
