package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/patchd/patchd/internal/api"
)

// tools are the MCP tools over one service.
type tools struct {
	svc    api.Service
	ending <-chan struct{} // Options.Ending
}

// patchInput is apply_patch's and preview_patch's input: the patch block's
// fields, and how long to wait for the outcome.
type patchInput struct {
	ID          string          `json:"id"`
	Description string          `json:"description"`
	TargetFile  string          `json:"target_file"`
	Patch       json.RawMessage `json:"patch"`
	Edits       json.RawMessage `json:"edits"`
	Role        string          `json:"role"`
	WaitSeconds *int            `json:"wait_seconds"`
}

// idInput is the input of the tools that take a patch's id.
type idInput struct {
	ID string `json:"id"`
}

// readInput is read_file's input.
type readInput struct {
	Path      string `json:"path"`
	StartLine int    `json:"start_line"`
	EndLine   int    `json:"end_line"`
}

// listFilesInput is list_files' input.
type listFilesInput struct {
	Path string `json:"path"`
	Glob string `json:"glob"`
}

// listInput is list_patches' input.
type listInput struct {
	State string `json:"state"`
	Limit int    `json:"limit"`
}

func (t *tools) register(s *mcp.Server) {
	no := false
	mcp.AddTool(s, &mcp.Tool{
		Name:  "apply_patch",
		Title: "Apply a patch",
		Description: "Change files in the workspace: one edit (patch) or several across files (edits), applied as one transaction (all or nothing), then wait for the outcome. " +
			"Answers the unified diff that was applied, or an error naming the file, quoting the text that did not match and showing the closest lines with their numbers: correct the edit from them (read the file again if needed) and send it again. " +
			"Forms: {\"target_file\": \"src/app.py\", \"patch\": {\"search\": \"exact old text\", \"replace\": \"new text\"}}; {\"patch\": {\"diff\": \"<unified diff>\"}}; {\"patch\": {\"apply_patch\": \"*** Begin Patch ...\"}}; {\"patch\": {\"text\": \"<aider SEARCH/REPLACE blocks>\"}}; or {\"edits\": [{\"target_file\": \"a.py\", \"search\": \"...\", \"replace\": \"...\"}, {\"target_file\": \"b.py\", \"search\": \"...\", \"replace\": \"...\"}]}. " +
			"Patches apply one at a time in the order received; every applied patch can be undone with revert_patch.",
		InputSchema: applySchema(),
		Annotations: &mcp.ToolAnnotations{Title: "Apply a patch", DestructiveHint: ptr(true), OpenWorldHint: &no},
	}, t.apply)
	mcp.AddTool(s, &mcp.Tool{
		Name:  "preview_patch",
		Title: "Preview a patch",
		Description: "Show the unified diff a patch would make, or the error it would fail with (the file, the text that did not match, the closest lines with their numbers), without writing anything. " +
			"Takes the same fields as apply_patch. The files may change before the patch is applied: apply_patch checks again.",
		InputSchema: previewSchema(),
		Annotations: &mcp.ToolAnnotations{Title: "Preview a patch", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.preview)
	mcp.AddTool(s, &mcp.Tool{
		Name:  "read_file",
		Title: "Read a file",
		Description: "Read a workspace file, each line prefixed with its number (as cat -n prints it), optionally a range of lines. Copy the text for a patch's search from here, without the numbers. " +
			fmt.Sprintf("At most %d lines or 64 KiB a call; a longer file is cut with a note saying which start_line reads on. Paths are confined as patches are: nothing outside the workspace, under .git or of patchd's own.", api.MaxReadLines),
		InputSchema: readSchema(),
		Annotations: &mcp.ToolAnnotations{Title: "Read a file", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.readFile)
	mcp.AddTool(s, &mcp.Tool{
		Name:  "list_files",
		Title: "List files",
		Description: "List the workspace's files (paths relative to its root, sorted), under a directory and/or matching a glob, leaving out what .gitignore excludes, .git and patchd's own files. " +
			fmt.Sprintf("At most %d paths; more is cut with a note: narrow it with path or glob.", api.MaxListFilesLimit),
		InputSchema: listFilesSchema(),
		Annotations: &mcp.ToolAnnotations{Title: "List files", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.listFiles)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "patch_status",
		Title:       "Patch status",
		Description: "The state of one patch by id (queued, applying, applied, failed or reverted), with its error and error code if it failed, the files it changed and the diff it applied. Use it when apply_patch answered that the patch is still queued.",
		InputSchema: idSchema("The patch's id, as apply_patch or list_patches answered it."),
		Annotations: &mcp.ToolAnnotations{Title: "Patch status", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.status)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_patches",
		Title:       "List patches",
		Description: "The workspace's patch history, newest first: each patch's id, state, files or target file, when it was received, and the error code of a failed one. Optionally only those in one state.",
		InputSchema: listSchema(),
		Annotations: &mcp.ToolAnnotations{Title: "List patches", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &no},
	}, t.list)
	mcp.AddTool(s, &mcp.Tool{
		Name:  "revert_patch",
		Title: "Revert a patch",
		Description: "Undo an applied patch: every file it changed gets back its content from before the patch, byte for byte (files it created are deleted, files it deleted come back). " +
			"Refused, changing nothing, if the patch is not applied or one of its files changed since.",
		InputSchema: idSchema("The id of the applied patch to undo."),
		Annotations: &mcp.ToolAnnotations{Title: "Revert a patch", DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: &no},
	}, t.revert)
}

// block is the patch block a tool call makes.
type block struct {
	ID          string            `json:"id"`
	Role        string            `json:"role"`
	TargetFile  string            `json:"target_file,omitempty"`
	Description string            `json:"description,omitempty"`
	Patch       json.RawMessage   `json:"patch,omitempty"`
	Edits       json.RawMessage   `json:"edits,omitempty"`
	Metadata    map[string]string `json:"metadata"`
}

// body is the patch block of in under id, as the webhook would take it.
func (in patchInput) body(id string) ([]byte, error) {
	role := in.Role
	if role == "" {
		role = "mcp"
	}
	b := block{ID: id, Role: role, TargetFile: in.TargetFile, Description: in.Description,
		Patch: blank(in.Patch), Edits: blank(in.Edits), Metadata: map[string]string{"source": "mcp"}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, api.Errorf(api.KindInvalid, api.CodeMalformedJSON, "", "encode the patch block: %w", err)
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// blank is nil for an absent or null member, so that it is left out.
func blank(raw json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return raw
}

// newID names a patch sent without an id: mcp-<UTC time>-<random hex>,
// well within the id's 128 characters and alphabet.
func newID(now time.Time) string {
	var b [6]byte
	rand.Read(b[:])
	return "mcp-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (t *tools) apply(ctx context.Context, _ *mcp.CallToolRequest, in patchInput) (*mcp.CallToolResult, any, error) {
	id := in.ID
	if id == "" {
		id = newID(time.Now())
	}
	body, err := in.body(id)
	if err != nil {
		return refusal(err), nil, nil
	}
	res, err := t.svc.Submit(ctx, api.SubmitRequest{Body: body})
	if err != nil {
		return refusal(err), nil, nil
	}
	wait := DefaultWaitSeconds
	if in.WaitSeconds != nil {
		wait = min(max(*in.WaitSeconds, 0), MaxWaitSeconds)
	}
	var p api.PatchView
	if wait == 0 {
		p, err = t.svc.Get(ctx, res.PatchID)
	} else {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Second)
		go func() {
			select {
			case <-t.ending:
				cancel()
			case <-wctx.Done():
			}
		}()
		p, err = t.svc.Wait(wctx, res.PatchID)
		cancel()
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err() // the caller is gone
	}
	// The patch is stored: a wait cut short (the bound, a stop) or
	// broken (the daemon went away) still answers its state.
	var cut string
	switch {
	case t.ended():
		cut = "patchd is restarting or stopping, and applies it once it is back"
	case err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		cut = "its outcome could not be followed: " + api.ErrorOf(err).Message
	}
	if p.ID == "" {
		p.ID, p.State = res.PatchID, res.State
	}
	return outcome(p, res.Duplicate, wait, cut), nil, nil
}

// ended reports whether Options.Ending is closed.
func (t *tools) ended() bool {
	select {
	case <-t.ending:
		return true
	default:
		return false
	}
}

// outcome renders a submitted patch as it stands after a wait of waited
// seconds, or one cut short for the reason cut says.
func outcome(p api.PatchView, duplicate bool, waited int, cut string) *mcp.CallToolResult {
	var b strings.Builder
	if duplicate {
		fmt.Fprintf(&b, "This id and body were received before: this is that patch's outcome, nothing was applied again.\n")
	}
	switch p.State {
	case api.StateApplied:
		fmt.Fprintf(&b, "Applied patch %s: %s.\n", p.ID, changed(p))
		notes(&b, p)
		fmt.Fprintf(&b, "\n%s", p.Diff)
		return result(b.String(), p, false)
	case api.StateFailed:
		fmt.Fprintf(&b, "Patch %s failed; no file was changed.\n\n%s\n", p.ID, p.Error)
		codeLine(&b, p.Code, "")
		hint(&b, p.Code)
		return result(b.String(), p, true)
	case api.StateReverted:
		fmt.Fprintf(&b, "Patch %s was applied and has since been reverted: its files are as before it.\n", p.ID)
		return result(b.String(), p, false)
	}
	switch {
	case cut != "":
		fmt.Fprintf(&b, "Patch %s is %s, and stored: %s.\n", p.ID, p.State, cut)
	case waited == 0:
		fmt.Fprintf(&b, "Patch %s is %s: patches apply one at a time, in the order received.\n", p.ID, p.State)
	default:
		fmt.Fprintf(&b, "Patch %s is still %s after %d s: patches apply one at a time, in the order received, and the ones before it are not done.\n", p.ID, p.State, waited)
	}
	if p.Error != "" {
		fmt.Fprintf(&b, "%s\n", p.Error)
	}
	fmt.Fprintf(&b, "It will be applied in turn: call patch_status with {\"id\": %q} for the outcome (the diff, or why it failed). Do not send it again.\n", p.ID)
	return result(b.String(), p, false)
}

func (t *tools) preview(ctx context.Context, _ *mcp.CallToolRequest, in patchInput) (*mcp.CallToolResult, any, error) {
	id := in.ID
	if id == "" {
		id = newID(time.Now())
	}
	body, err := in.body(id)
	if err != nil {
		return refusal(err), nil, nil
	}
	res, err := t.svc.Preview(ctx, api.PreviewRequest{Body: body})
	if err != nil {
		return refusal(err), nil, nil
	}
	text := fmt.Sprintf("Would change %s (nothing was written):\n\n%s", strings.Join(res.Files, ", "), res.Diff)
	return result(text, res, false), nil, nil
}

func (t *tools) status(ctx context.Context, _ *mcp.CallToolRequest, in idInput) (*mcp.CallToolResult, any, error) {
	p, err := t.svc.Get(ctx, in.ID)
	if err != nil {
		return refusal(err), nil, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Patch %s: %s", p.ID, p.State)
	if p.Description != "" {
		fmt.Fprintf(&b, " (%s)", p.Description)
	}
	b.WriteString("\n")
	if len(p.Files) > 0 {
		fmt.Fprintf(&b, "Files: %s\n", changed(p))
	}
	if p.Error != "" {
		fmt.Fprintf(&b, "Error: %s\n", p.Error)
		codeLine(&b, p.Code, "")
	}
	notes(&b, p)
	if p.Diff != "" {
		fmt.Fprintf(&b, "\n%s", p.Diff)
	}
	return result(b.String(), p, false), nil, nil
}

func (t *tools) list(ctx context.Context, _ *mcp.CallToolRequest, in listInput) (*mcp.CallToolResult, any, error) {
	limit := in.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	l, err := t.svc.List(ctx, api.ListOptions{Limit: limit, State: in.State})
	if err != nil {
		return refusal(err), nil, nil
	}
	var b strings.Builder
	if len(l.Patches) == 0 {
		b.WriteString("No patches.\n")
	}
	for _, p := range l.Patches {
		what := p.TargetFile
		if len(p.Files) > 0 {
			what = changed(p)
		}
		if p.Description != "" {
			what = strings.TrimSpace(what + " " + strconvQuote(p.Description))
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s", p.ID, p.State, p.ReceivedAt.UTC().Format(time.RFC3339), what)
		if p.Code != "" {
			fmt.Fprintf(&b, "\tcode: %s", p.Code)
		}
		b.WriteString("\n")
	}
	if l.NextCursor != "" {
		fmt.Fprintf(&b, "(more patches are older than these; ask for a higher limit)\n")
	}
	return result(b.String(), l, false), nil, nil
}

func (t *tools) revert(ctx context.Context, _ *mcp.CallToolRequest, in idInput) (*mcp.CallToolResult, any, error) {
	ctx, cancel := context.WithTimeout(ctx, api.MaxRevertWait)
	defer cancel()
	p, err := t.svc.Revert(ctx, in.ID)
	if err != nil {
		return refusal(err), nil, nil
	}
	text := fmt.Sprintf("Reverted patch %s: %s have their content from before it again.\n", p.ID, changed(p))
	return result(text, p, false), nil, nil
}

// strconvQuote quotes a description for a one-line listing, cut short.
func strconvQuote(s string) string {
	if r := []rune(s); len(r) > 80 {
		s = string(r[:80]) + "…"
	}
	return strconv.Quote(s)
}

func (t *tools) readFile(ctx context.Context, _ *mcp.CallToolRequest, in readInput) (*mcp.CallToolResult, any, error) {
	ft, err := t.svc.ReadFile(ctx, api.ReadFileRequest{Path: in.Path, StartLine: in.StartLine, EndLine: in.EndLine})
	if err != nil {
		return refusal(err), nil, nil
	}
	var b strings.Builder
	switch {
	case ft.TotalLines == 0:
		fmt.Fprintf(&b, "%s is empty.\n", ft.Path)
	case ft.EndLine < ft.StartLine:
		fmt.Fprintf(&b, "%s has %d lines; none from line %d.\n", ft.Path, ft.TotalLines, ft.StartLine)
	default:
		fmt.Fprintf(&b, "%s, lines %d-%d of %d:\n", ft.Path, ft.StartLine, ft.EndLine, ft.TotalLines)
	}
	b.WriteString(ft.Text)
	if ft.Text != "" && !strings.HasSuffix(ft.Text, "\n") {
		b.WriteString("\n(no newline at the end of the file)\n")
	}
	if ft.Note != "" {
		fmt.Fprintf(&b, "(%s)\n", ft.Note)
	}
	return result(b.String(), ft, false), nil, nil
}

func (t *tools) listFiles(ctx context.Context, _ *mcp.CallToolRequest, in listFilesInput) (*mcp.CallToolResult, any, error) {
	fl, err := t.svc.ListFiles(ctx, api.ListFilesRequest{Path: in.Path, Glob: in.Glob})
	if err != nil {
		return refusal(err), nil, nil
	}
	var b strings.Builder
	if len(fl.Files) == 0 {
		b.WriteString("No files.\n")
	}
	for _, f := range fl.Files {
		b.WriteString(f)
		b.WriteString("\n")
	}
	if fl.Note != "" {
		fmt.Fprintf(&b, "(%s)\n", fl.Note)
	}
	return result(b.String(), fl, false), nil, nil
}

// changed names the files of an applied patch, and what it did to each.
func changed(p api.PatchView) string {
	if len(p.Files) == 0 {
		return "no file"
	}
	names := make([]string, len(p.Files))
	for i, f := range p.Files {
		switch {
		case f.Deleted:
			names[i] = f.Path + " (deleted)"
		case !f.Existed:
			names[i] = f.Path + " (created)"
		default:
			names[i] = f.Path
		}
	}
	return strings.Join(names, ", ")
}

func notes(b *strings.Builder, p api.PatchView) {
	for _, n := range p.Notes {
		fmt.Fprintf(b, "Note: %s\n", n)
	}
}

// codeLine adds a refusal's code and field, for programs and for a model
// that branches on them.
func codeLine(b *strings.Builder, code, field string) {
	switch {
	case code != "" && field != "":
		fmt.Fprintf(b, "\ncode: %s (field %s)\n", code, field)
	case code != "":
		fmt.Fprintf(b, "\ncode: %s\n", code)
	}
}

// hint says what to do next about a refusal whose cause the model can fix.
func hint(b *strings.Builder, code string) {
	switch code {
	case api.CodeMatchNotFound, "hunk_failed":
		b.WriteString("Copy the text to replace from the closest lines above (without their numbers), or read the file again, and send the corrected patch.\n")
	case api.CodeMatchAmbiguous:
		b.WriteString("Add surrounding lines to the text so that it matches one place only, or set \"all\": true to change every place.\n")
	case api.CodeIDConflict:
		b.WriteString("Leave id out (one is generated) or choose another.\n")
	}
}

// refusal is err as a tool error: its message, then its code and field.
func refusal(err error) *mcp.CallToolResult {
	e := api.ErrorOf(err)
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString("\n")
	codeLine(&b, e.Code, e.Field)
	hint(&b, e.Code)
	r := result(b.String(), nil, true)
	r.StructuredContent = map[string]string{"error": e.Message, "code": e.Code, "field": e.Field}
	return r
}

// result is a tool result with text for the model and, when v is not nil,
// the same answer as structured content for programs.
func result(text string, v any, isError bool) *mcp.CallToolResult {
	r := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, IsError: isError}
	if v != nil {
		r.StructuredContent = v
	}
	return r
}
