package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The protocol revisions patchd's MCP door speaks: the current one, which
// has no sessions (over HTTP, the SDK's stateless mode), and the previous
// one, with the initialize handshake.
var mcpRevisions = []string{"2026-07-28", "2025-11-25"}

// mcpTools are the tool names of the contract (DESIGN.md, "MCP tools").
var mcpTools = []string{"apply_patch", "list_files", "list_patches", "patch_status", "preview_patch", "read_file", "revert_patch"}

// bearer adds the token to every request of an MCP client over HTTP.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// connectMCP connects an SDK client at revision rev and checks that it was
// the one negotiated.
func connectMCP(t *testing.T, tr mcp.Transport, rev string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "patchd-test", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatalf("connect at %s: %v", rev, err)
	}
	t.Cleanup(func() { cs.Close() })
	if got := cs.InitializeResult().ProtocolVersion; got != rev {
		t.Fatalf("negotiated protocol %s, want %s", got, rev)
	}
	return cs
}

// callTool calls a tool and returns its text and whether it is an error.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	text, isErr, err := tryTool(cs, name, args)
	if err != nil {
		t.Fatal(err)
	}
	return text, isErr
}

// tryTool is callTool for another goroutine than the test's: a protocol
// error is returned.
func tryTool(cs *mcp.ClientSession, name string, args map[string]any) (string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return "", false, fmt.Errorf("%s: protocol error: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError, nil
}

// checkTools lists the tools: the contract's names, each with an input
// schema whose every property is described, and annotations saying which
// are read-only and which destructive.
func checkTools(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		if tool.Description == "" {
			t.Errorf("%s has no description", tool.Name)
		}
		var schema struct {
			Type       string `json:"type"`
			Properties map[string]struct {
				Type        any    `json:"type"`
				Description string `json:"description"`
			} `json:"properties"`
		}
		data, _ := json.Marshal(tool.InputSchema)
		if err := json.Unmarshal(data, &schema); err != nil || schema.Type != "object" || len(schema.Properties) == 0 {
			t.Errorf("%s: input schema %s", tool.Name, data)
		}
		for name, p := range schema.Properties {
			if p.Description == "" || p.Type == nil {
				t.Errorf("%s: property %s has no type or description: %s", tool.Name, name, data)
			}
		}
		a := tool.Annotations
		if a == nil {
			t.Errorf("%s has no annotations", tool.Name)
			continue
		}
		readOnly := !slices.Contains([]string{"apply_patch", "revert_patch"}, tool.Name)
		if a.ReadOnlyHint != readOnly {
			t.Errorf("%s: readOnlyHint %v, want %v", tool.Name, a.ReadOnlyHint, readOnly)
		}
		if !readOnly && (a.DestructiveHint == nil || !*a.DestructiveHint) {
			t.Errorf("%s changes files and is not marked destructive", tool.Name)
		}
	}
	slices.Sort(names)
	for _, want := range mcpTools {
		if !slices.Contains(names, want) {
			t.Errorf("tools %v lack %s", names, want)
		}
	}
}

// readWS reads a workspace file.
func readWS(t *testing.T, ws, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ws, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// exerciseMCP runs the tools end to end in the directory dir of the
// workspace ws: a patch across two files, a refusal with the closest
// lines, a preview, the status, the list and a revert.
func exerciseMCP(t *testing.T, cs *mcp.ClientSession, ws, dir string) {
	t.Helper()
	checkTools(t, cs)
	a, b := dir+"/a.py", dir+"/b.py"
	origA := "def greet(name):\n    return 'hello ' + name\n\n\ndef bye():\n    return 'bye'\n"
	origB := "import a\n\nprint(a.greet('world'))\n"
	for rel, text := range map[string]string{a: origA, b: origB} {
		if err := os.MkdirAll(filepath.Join(ws, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The text with line numbers, the agent's source for a search text.
	text, isErr := callTool(t, cs, "read_file", map[string]any{"path": a})
	if isErr || !strings.Contains(text, "     1\tdef greet(name):\n") || !strings.Contains(text, "     6\t    return 'bye'\n") || !strings.Contains(text, "lines 1-6 of 6") {
		t.Fatalf("read_file: error=%v\n%s", isErr, text)
	}
	text, isErr = callTool(t, cs, "read_file", map[string]any{"path": a, "start_line": 5, "end_line": 5})
	if isErr || strings.TrimSpace(text) != a+", lines 5-5 of 6:\n     5\tdef bye():" {
		t.Fatalf("read_file of line 5: error=%v\n%q", isErr, text)
	}
	for path, code := range map[string]string{"../outside.txt": "path_outside_workspace", ".git/config": "path_git_internals", ".patchd/token": "path_protected", dir + "/missing.py": "file_not_found"} {
		text, isErr = callTool(t, cs, "read_file", map[string]any{"path": path})
		if !isErr || !strings.Contains(text, "code: "+code) {
			t.Errorf("read_file %s: error=%v, want code %s:\n%s", path, isErr, code, text)
		}
	}
	text, isErr = callTool(t, cs, "list_files", map[string]any{"path": dir, "glob": "*.py"})
	if isErr || text != a+"\n"+b+"\n" {
		t.Fatalf("list_files: error=%v\n%q", isErr, text)
	}
	text, isErr = callTool(t, cs, "list_files", map[string]any{"path": "../"})
	if !isErr || !strings.Contains(text, "code: path_outside_workspace") {
		t.Fatalf("list_files ../: error=%v\n%s", isErr, text)
	}

	// One patch, two files.
	id := strings.ReplaceAll(dir, "/", "-") + "-multi"
	text, isErr = callTool(t, cs, "apply_patch", map[string]any{
		"id": id, "description": "greet with an f-string and shout",
		"edits": []any{
			map[string]any{"target_file": a, "search": "    return 'hello ' + name\n", "replace": "    return f'hello {name}'\n"},
			map[string]any{"target_file": b, "search": "print(a.greet('world'))", "replace": "print(a.greet('world').upper())"},
		},
	})
	if isErr || !strings.Contains(text, "Applied patch "+id) || !strings.Contains(text, "+    return f'hello {name}'") || !strings.Contains(text, "+print(a.greet('world').upper())") {
		t.Fatalf("apply_patch across two files: error=%v\n%s", isErr, text)
	}
	newA, newB := readWS(t, ws, a), readWS(t, ws, b)
	if !strings.Contains(newA, "f'hello {name}'") || !strings.Contains(newB, ".upper()") {
		t.Fatalf("files not changed on disk:\n%s\n%s", newA, newB)
	}

	// A search text that is not there: refused, teaching.
	text, isErr = callTool(t, cs, "apply_patch", map[string]any{
		"target_file": a,
		"patch":       map[string]any{"search": "def bye():\n    return 'goodbye'\n", "replace": "def bye():\n    return 'ciao'\n"},
	})
	if !isErr || !strings.Contains(text, "not found in "+a) || !regexp.MustCompile(`(?m)^\s*5\| def bye\(\):`).MatchString(text) || !strings.Contains(text, "code: match_not_found") {
		t.Fatalf("refusal: error=%v, want the file, the closest lines with numbers and the code:\n%s", isErr, text)
	}
	if got := readWS(t, ws, a); got != newA {
		t.Fatalf("a refused patch changed %s:\n%s", a, got)
	}

	// A preview writes nothing.
	text, isErr = callTool(t, cs, "preview_patch", map[string]any{
		"target_file": a, "patch": map[string]any{"search": "return 'bye'", "replace": "return 'ciao'"},
	})
	if isErr || !strings.Contains(text, "-    return 'bye'") || !strings.Contains(text, "+    return 'ciao'") {
		t.Fatalf("preview_patch: error=%v\n%s", isErr, text)
	}
	if got := readWS(t, ws, a); got != newA {
		t.Fatalf("a preview changed %s:\n%s", a, got)
	}
	// A preview that would fail says why.
	text, isErr = callTool(t, cs, "preview_patch", map[string]any{
		"target_file": a, "patch": map[string]any{"search": "return 'adieu'", "replace": "x"},
	})
	if !isErr || !strings.Contains(text, "code: match_not_found") {
		t.Fatalf("preview_patch of a patch that would fail: error=%v\n%s", isErr, text)
	}

	text, isErr = callTool(t, cs, "patch_status", map[string]any{"id": id})
	if isErr || !strings.Contains(text, "Patch "+id+": applied") || !strings.Contains(text, "+print(a.greet('world').upper())") {
		t.Fatalf("patch_status: error=%v\n%s", isErr, text)
	}
	text, isErr = callTool(t, cs, "patch_status", map[string]any{"id": "no-such-patch"})
	if !isErr || !strings.Contains(text, "code: patch_not_found") {
		t.Fatalf("patch_status of an unknown id: error=%v\n%s", isErr, text)
	}

	// The list, newest first: the refused patch (a generated id) above.
	text, isErr = callTool(t, cs, "list_patches", map[string]any{"limit": 2})
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if isErr || len(lines) < 2 || !strings.HasPrefix(lines[0], "mcp-") || !strings.Contains(lines[0], "failed") || !strings.Contains(lines[0], "code: match_not_found") || !strings.HasPrefix(lines[1], id+"\tapplied") {
		t.Fatalf("list_patches: error=%v\n%s", isErr, text)
	}
	text, isErr = callTool(t, cs, "list_patches", map[string]any{"state": "bogus"})
	if !isErr {
		t.Fatalf("list_patches with an unknown state: not an error\n%s", text)
	}

	// Revert puts both files back; a second revert is refused.
	text, isErr = callTool(t, cs, "revert_patch", map[string]any{"id": id})
	if isErr || !strings.Contains(text, "Reverted patch "+id) {
		t.Fatalf("revert_patch: error=%v\n%s", isErr, text)
	}
	if readWS(t, ws, a) != origA || readWS(t, ws, b) != origB {
		t.Fatalf("revert did not restore the files:\n%s\n%s", readWS(t, ws, a), readWS(t, ws, b))
	}
	text, isErr = callTool(t, cs, "revert_patch", map[string]any{"id": id})
	if !isErr || !strings.Contains(text, "code: not_applied") {
		t.Fatalf("second revert_patch: error=%v\n%s", isErr, text)
	}
}

// TestMCPHTTP: the daemon serves MCP at /mcp behind its token and its
// Origin guard, at both protocol revisions.
func TestMCPHTTP(t *testing.T) {
	e := newEnv(t)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st := e.waitRunning(10 * time.Second)
	endpoint := "http://" + st.Address + "/mcp"
	token := e.token()

	for _, rev := range mcpRevisions {
		t.Run(rev, func(t *testing.T) {
			tr := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}}
			cs := connectMCP(t, tr, rev)
			exerciseMCP(t, cs, e.ws, "http-"+rev)
		})
	}

	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"0"}}}`
	post := func(auth, origin string) (int, string) {
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		body.Write(buf[:n])
		return resp.StatusCode, body.String()
	}
	if code, body := post("", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Errorf("without the token: %d %s", code, body)
	}
	if code, body := post("Bearer wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d %s", code, body)
	}
	if code, body := post("Bearer "+token, "https://evil.example"); code != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden_origin"`) {
		t.Errorf("from a foreign origin: %d %s", code, body)
	}
	if code, body := post("Bearer "+token, ""); code != http.StatusOK || !strings.Contains(body, `"protocolVersion":"2025-11-25"`) {
		t.Errorf("with the token: %d %s", code, body)
	}
}

// TestMCPStdio: `patchd mcp` serves MCP on its standard input and output,
// at both protocol revisions, through the workspace's daemon: the first
// starts it, the second finds it, and the CLI sees their patches.
func TestMCPStdio(t *testing.T) {
	e := newEnv(t)
	if st, _ := e.status(); st.Running {
		t.Fatal("a daemon runs before the test")
	}
	var pid int
	for _, rev := range mcpRevisions {
		t.Run(rev, func(t *testing.T) {
			cmd := e.command("mcp", "--port", "0")
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			cs := connectMCP(t, &mcp.CommandTransport{Command: cmd}, rev)
			dir := "stdio-" + rev
			exerciseMCP(t, cs, e.ws, dir)
			if t.Failed() {
				t.Logf("patchd mcp's standard error:\n%s", stderr)
			}
			st := e.waitRunning(5 * time.Second)
			if pid == 0 {
				pid = st.PID
			} else if st.PID != pid {
				t.Errorf("the second patchd mcp runs daemon pid %d, not the first one's %d", st.PID, pid)
			}
			// The CLI sees the patch: one daemon, one history.
			id := dir + "-multi"
			if r := e.run("patches", "show", id); r.code != 0 || !strings.Contains(r.stdout, "reverted") {
				t.Errorf("patches show %s: %s", id, r)
			}
			if err := cs.Close(); err != nil {
				t.Errorf("close the session: %v", err)
			}
			// Close waited for the process, which had its input closed.
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("patchd mcp exited %d once its input closed; standard error:\n%s", code, stderr)
			}
		})
	}
}

// TestMCPStdioNoDaemon: when the daemon cannot start (its port is taken),
// `patchd mcp` exits 1 saying why on standard error, and writes nothing
// on standard output, which belongs to the protocol.
func TestMCPStdioNoDaemon(t *testing.T) {
	e := newEnv(t)
	port, _ := foreignHolder(t)
	r := e.run("mcp", "--port", fmt.Sprint(port), "--fallback-port", "none")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "start the daemon") || !strings.Contains(r.stderr, fmt.Sprint(port)) {
		t.Fatalf("patchd mcp with its port taken: %s", r)
	}
}

// httpMCP connects an SDK client to the daemon's /mcp at rev.
func httpMCP(t *testing.T, e *tenv, rev string) *mcp.ClientSession {
	t.Helper()
	st := e.waitRunning(10 * time.Second)
	tr := &mcp.StreamableClientTransport{Endpoint: "http://" + st.Address + "/mcp", HTTPClient: &http.Client{Transport: bearer{e.token(), http.DefaultTransport}}}
	return connectMCP(t, tr, rev)
}

// TestMCPWaitProcess: apply_patch waits within its bound: a patch still
// queued at the end is said so, with how to ask later; an outcome that
// comes after the server's 30 s request timeouts still reaches the caller.
func TestMCPWaitProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfgPath, started, release := slowCheckConfig(t)
	os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
	os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
	if _, r := e.start("--config", cfgPath); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	cs := httpMCP(t, e, mcpRevisions[0])
	text, isErr := callTool(t, cs, "apply_patch", map[string]any{"id": "S1", "target_file": "slow.txt",
		"patch": map[string]any{"search": "seed", "replace": "grown"}, "wait_seconds": 1})
	if isErr || !regexp.MustCompile(`Patch S1 is still (queued|applying) after 1 s`).MatchString(text) || !strings.Contains(text, `call patch_status with {"id": "S1"}`) {
		t.Fatalf("apply_patch past its wait: error=%v\n%s", isErr, text)
	}
	waitFor(t, 20*time.Second, "the slow check to start", started)

	type answer struct {
		text  string
		isErr bool
		err   error
	}
	done := make(chan answer, 1)
	begun := time.Now()
	go func() {
		text, isErr, err := tryTool(cs, "apply_patch", map[string]any{"id": "A1", "target_file": "a.txt",
			"patch": map[string]any{"search": "seed", "replace": "grown"}, "wait_seconds": 45})
		done <- answer{text, isErr, err}
	}()
	// The check holds the worker past the server's 30 s timeouts.
	waitFor(t, 40*time.Second, "31 s to pass", func() bool { return time.Since(begun) > 31*time.Second })
	release()
	select {
	case a := <-done:
		if a.err != nil || a.isErr || !strings.Contains(a.text, "Applied patch A1") || !strings.Contains(a.text, "+grown") {
			t.Fatalf("apply_patch answered after %s: %v, error=%v\n%s", time.Since(begun), a.err, a.isErr, a.text)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("apply_patch did not answer once the worker was free")
	}
}

// TestMCPWaitStop: a daemon that begins to stop ends apply_patch's waits:
// over /mcp the caller hears at once that the patch is stored and that
// patchd is stopping; through patchd mcp, that the patch is stored and its
// outcome could no longer be followed (the daemon is not started again).
// The stop does not wait for the wait.
func TestMCPWaitStop(t *testing.T) {
	for _, door := range []string{"http", "stdio"} {
		t.Run(door, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cfgPath, started, release := slowCheckConfig(t)
			os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644)
			os.WriteFile(filepath.Join(e.ws, "slow.txt"), []byte("seed\n"), 0o644)
			flags := []string{"--port", "0", "--config", cfgPath, "--drain-timeout", "30s"}
			var cs *mcp.ClientSession
			want := "Patch A1 is queued, and stored: patchd is restarting or stopping, and applies it once it is back."
			if door == "http" {
				if r := e.run(append([]string{"start"}, flags...)...); r.code != 0 {
					t.Fatalf("start: %s", r)
				}
				cs = httpMCP(t, e, mcpRevisions[1])
			} else {
				cs = connectMCP(t, &mcp.CommandTransport{Command: e.command(append([]string{"mcp"}, flags...)...)}, mcpRevisions[0])
				want = "Patch A1 is queued, and stored: its outcome could not be followed: "
			}
			callTool(t, cs, "apply_patch", map[string]any{"id": "S1", "target_file": "slow.txt",
				"patch": map[string]any{"search": "seed", "replace": "grown"}, "wait_seconds": 0})
			waitFor(t, 20*time.Second, "the slow check to start", started)

			type answer struct {
				text  string
				isErr bool
				err   error
			}
			done := make(chan answer, 1)
			go func() {
				text, isErr, err := tryTool(cs, "apply_patch", map[string]any{"id": "A1", "target_file": "a.txt",
					"patch": map[string]any{"search": "seed", "replace": "grown"}, "wait_seconds": 50})
				done <- answer{text, isErr, err}
			}()
			waitFor(t, 20*time.Second, "A1 to be queued", func() bool { return e.run("patches", "show", "A1").code == 0 })
			stopped := make(chan result, 1)
			go func() { stopped <- e.run("stop") }()
			select {
			case a := <-done:
				if a.err != nil || a.isErr || !strings.Contains(a.text, want) {
					t.Errorf("apply_patch during a stop: %v, error=%v\n%s", a.err, a.isErr, a.text)
				}
			case <-time.After(20 * time.Second):
				t.Error("apply_patch kept waiting while the daemon stopped")
			}
			release()
			if r := <-stopped; r.code != 0 {
				t.Errorf("stop: %s", r)
			}
			if st, _ := e.status(); st.Running {
				t.Errorf("a daemon runs again after the stop: pid %d", st.PID)
			}
		})
	}
}
