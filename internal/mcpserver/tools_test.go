package mcpserver

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// TestNewID: a generated id is one the patch block accepts (1-128 of
// A-Z a-z 0-9 . _ : -, not starting with '.'), and two differ.
func TestNewID(t *testing.T) {
	now := time.Date(2026, 12, 5, 11, 18, 0, 0, time.FixedZone("x", 3600))
	a, b := newID(now), newID(now)
	valid := regexp.MustCompile(`^mcp-20261205T101800Z-[0-9a-f]{12}$`)
	if !valid.MatchString(a) || len(a) > 128 {
		t.Errorf("newID = %q", a)
	}
	if a == b {
		t.Errorf("two ids alike: %q", a)
	}
}

// TestBody: the block a tool call makes carries the call's fields as they
// came, role mcp unless given, and leaves out what is absent.
func TestBody(t *testing.T) {
	in := patchInput{TargetFile: "a.go", Patch: json.RawMessage(`{"search":"<a>","replace":"b"}`), Edits: json.RawMessage("null")}
	body, err := in.body("x1")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"x1","role":"mcp","target_file":"a.go","patch":{"search":"<a>","replace":"b"},"metadata":{"source":"mcp"}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	in = patchInput{Role: "refactor", Edits: json.RawMessage(`[{"diff":"x"}]`)}
	body, _ = in.body("x2")
	want = `{"id":"x2","role":"refactor","edits":[{"diff":"x"}],"metadata":{"source":"mcp"}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}
