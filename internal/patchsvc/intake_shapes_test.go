package patchsvc

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// TestSubmitShapesConfined: the shapes agents nest edits in (issue 12)
// go through the same confinement as the block's own: a second file that
// escapes, reaches .git or the state dir is refused at intake, wherever it
// hides (an element of "patch.edits", of "patch" as a list, an aider
// block inside a fence), and nothing is stored.
func TestSubmitShapesConfined(t *testing.T) {
	f := newFixture(t)
	sr := `{"target_file":"src/app.py","search":"a = 1","replace":"a = 3"}`
	fenced := func(paths ...string) string {
		var b strings.Builder
		for _, p := range paths {
			b.WriteString("```python\n" + p + "\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n```\n")
		}
		s, _ := json.Marshal(b.String())
		return string(s)
	}
	tests := []struct{ name, body, code, want string }{
		{"patch.edits", `{"id":"x","role":"r","patch":{"edits":[` + sr + `,{"target_file":"../y","old_string":"a","new_string":"b"}]}}`, api.CodePathOutside, "escapes the workspace"},
		{"patch list", `{"id":"x","role":"r","patch":[` + sr + `,{"diff":"--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+x\n"}]}`, api.CodePathGit, "git internals"},
		{"aider path inside the fence", `{"id":"x","role":"r","patch":` + fenced("src/new.py", ".patchd/token") + `}`, api.CodePathProtected, "patchd's state directory"},
		{"aider in patch.edits", `{"id":"x","role":"r","patch":{"edits":[` + fenced("src/new.py", "/etc/passwd") + `]}}`, api.CodePathOutside, "is absolute"},
	}
	for _, tt := range tests {
		_, err := f.submit(tt.body)
		wantError(t, tt.name, err, api.KindInvalid, tt.code, "path", tt.want)
	}
	_, err := f.submit(`{"id":"x","role":"r","target_file":"src/app.py","patch":{"find":"a = 1","replace":"a = 3"}}`)
	wantError(t, "find", err, api.KindInvalid, api.CodeFieldInvalid, "patch.find", `a search/replace edit takes "search"`)
	if st := f.st.Stats(); st.Total != 0 {
		t.Errorf("store holds %d patches, want none", st.Total)
	}
}

// TestSubmitNestedEditsApply: "patch": {"edits": [...]} is one
// transaction, applied through the worker like "edits".
func TestSubmitNestedEditsApply(t *testing.T) {
	f := newFixture(t)
	f.run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	aider, _ := json.Marshal("src/util.py\n```python\n<<<<<<< SEARCH\n=======\ndef shout(s):\n    return s.upper()\n>>>>>>> REPLACE\n```\n")
	body := `{"id":"n1","role":"r","target_file":"src/app.py","patch":{"edits":[{"old_string":"a = 1","new_string":"a = 3"},` + string(aider) + `]}}`
	if _, err := f.submit(body); err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Wait(ctx, "n1")
	if err != nil || p.State != "applied" {
		t.Fatalf("Wait(n1) = %+v, %v, want applied", p, err)
	}
	app, _ := os.ReadFile(filepath.Join(f.ws, "src", "app.py"))
	util, _ := os.ReadFile(filepath.Join(f.ws, "src", "util.py"))
	if string(app) != "a = 3\nb = 2\nb = 2\n" || !strings.Contains(string(util), "def shout") {
		t.Errorf("app.py = %q, util.py = %q; want both edits", app, util)
	}
}
