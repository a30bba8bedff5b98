package server

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestExecutionClaims: the API description and the README say what runs.
// Without checks nothing from a patch runs; with checks configured the
// workspace's code runs, as the patch left it (finding 5 of issue 10: both
// said "nothing in a patch is ever executed" while a check `make -s` ran
// the Makefile a patch had just changed).
func TestExecutionClaims(t *testing.T) {
	f := newFixture(t, nil)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc struct {
		Info struct{ Description string } `json:"info"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"openapi.json": doc.Info.Description, "README.md": string(readme)} {
		flat := strings.Join(strings.Fields(text), " ")
		if strings.Contains(strings.ToLower(flat), "is ever executed") || strings.Contains(flat, "nothing in a payload is executed") {
			t.Errorf("%s still claims that nothing in a patch is ever executed", name)
		}
		for _, want := range []string{"checks", "code runs", "token"} {
			if !strings.Contains(flat, want) {
				t.Errorf("%s does not say %q about checks running the workspace's code:\n%s", name, want, text[:min(len(text), 400)])
			}
		}
	}
}
