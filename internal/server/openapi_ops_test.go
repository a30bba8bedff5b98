package server

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// servedDoc fetches /openapi.json from a real server and decodes it.
func servedDoc(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Body)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// operations calls fn for every operation of doc.
func operations(doc map[string]any, fn func(path, method string, op map[string]any)) {
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			fn(path, method, op.(map[string]any))
		}
	}
}

// openAITextLimit is how many characters of an operation's summary,
// description or a parameter's description a GPT action takes.
const openAITextLimit = 300

// TestOperationText: every operation has a unique operationId, a summary or
// description, and none of its texts is over OpenAI's 300 characters
// (issue 12: a GPT action refuses or cuts longer ones).
func TestOperationText(t *testing.T) {
	doc := servedDoc(t, newFixture(t, nil))
	ids := map[string]string{}
	n := 0
	operations(doc, func(path, method string, op map[string]any) {
		n++
		where := method + " " + path
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", where)
		} else if other, ok := ids[id]; ok {
			t.Errorf("%s and %s share operationId %q", where, other, id)
		}
		ids[id] = where
		summary, _ := op["summary"].(string)
		desc, _ := op["description"].(string)
		if summary == "" && desc == "" {
			t.Errorf("%s has neither summary nor description", where)
		}
		check := func(what, s string) {
			if n := len([]rune(s)); n > openAITextLimit {
				t.Errorf("%s: %s is %d characters, over %d: %q", where, what, n, openAITextLimit, s)
			}
		}
		check("summary", summary)
		check("description", desc)
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			p := p.(map[string]any)
			d, _ := p["description"].(string)
			check("parameter "+p["name"].(string)+"'s description", d)
		}
	})
	if n < 7 {
		t.Errorf("only %d operations", n)
	}
}

// TestConsequential: operations that change nothing (every GET, and the
// preview) carry x-openai-isConsequential: false, so a GPT may call them
// without asking each time; those that change the workspace or the queue
// (submit, revert, drop) do not.
func TestConsequential(t *testing.T) {
	doc := servedDoc(t, newFixture(t, nil))
	consequential := map[string]bool{"submitPatch": true, "revertPatch": true, "dropPatch": true}
	seen := 0
	operations(doc, func(path, method string, op map[string]any) {
		id, _ := op["operationId"].(string)
		v, has := op["x-openai-isConsequential"]
		switch {
		case consequential[id]:
			seen++
			if has && v == false {
				t.Errorf("%s %s (%s) changes the workspace but says x-openai-isConsequential: false", method, path, id)
			}
		case method == "get" || id == "previewPatch":
			if v != false {
				t.Errorf("%s %s (%s) changes nothing but x-openai-isConsequential is %v, want false", method, path, id, v)
			}
		}
	})
	if seen != len(consequential) {
		t.Errorf("found %d of the %d consequential operations", seen, len(consequential))
	}
}
