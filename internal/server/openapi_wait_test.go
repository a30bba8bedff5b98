package server

import (
	"strings"
	"testing"
)

// TestOpenAPIWait: the document says how to wait for the outcome (the
// wait parameter, wait_seconds in the block), what the outcomes answer,
// and tells a model to call getPatch when it got "queued"; a patch's
// earlier attempts are in its schema.
func TestOpenAPIWait(t *testing.T) {
	doc := servedDoc(t, newFixture(t, nil))
	op := doc["paths"].(map[string]any)["/webhook"].(map[string]any)["post"].(map[string]any)
	var wait map[string]any
	for _, p := range op["parameters"].([]any) {
		if p := p.(map[string]any); p["name"] == "wait" {
			wait = p
		}
	}
	if wait == nil || wait["in"] != "query" || !strings.Contains(wait["description"].(string), "at most 40") {
		t.Errorf("submitPatch's wait parameter = %v, want a query parameter naming its bound", wait)
	}
	if d := op["description"].(string); !strings.Contains(d, "getPatch") || !strings.Contains(d, "wait") {
		t.Errorf("submitPatch's description %q does not say to wait or to call getPatch", d)
	}
	responses := op["responses"].(map[string]any)
	for code, want := range map[string]string{"200": "failed", "202": "getPatch"} {
		if d := responses[code].(map[string]any)["description"].(string); !strings.Contains(d, want) {
			t.Errorf("submitPatch's %s answer %q does not mention %s", code, d, want)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	prop := func(schema, name string) map[string]any {
		p, _ := schemas[schema].(map[string]any)["properties"].(map[string]any)[name].(map[string]any)
		return p
	}
	if p := prop("PatchBlock", "wait_seconds"); p == nil || p["maximum"] != float64(40) {
		t.Errorf("PatchBlock.wait_seconds = %v, want a number up to 40", p)
	}
	for _, name := range []string{"diff", "files", "note"} {
		if prop("Answer", "result")["properties"].(map[string]any)[name] == nil {
			t.Errorf("Answer.result has no %s", name)
		}
	}
	if prop("Patch", "attempts") == nil {
		t.Errorf("Patch has no attempts")
	}
}
