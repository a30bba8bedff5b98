package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadAndListFiles: the real daemon reads a workspace file with line
// numbers (GET /file) and lists the workspace (GET /files) with its
// .gitignore respected and neither .git nor the state directory (holding
// the token) in it; reading the token, .git or a link out is refused with
// the resolver's codes; and a patch applied is read back as applied.
func TestReadAndListFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, content := range map[string]string{
		"src/app.py":      "a = 1\nb = 2\n",
		"src/gen/x.py":    "generated\n",
		"README.md":       "# hello\n",
		".gitignore":      "gen/\n*.log\n",
		"debug.log":       "noise\n",
		".git/config":     "[core]\n",
		"docs/guide.md":   "guide\n",
		"docs/.gitignore": "!keep.log\n",
		"docs/keep.log":   "kept\n",
	} {
		p := filepath.Join(e.ws, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret\n"), 0o644)
	os.Symlink(outside, filepath.Join(e.ws, "out"))
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)

	var fl struct {
		Files     []string `json:"files"`
		Truncated bool     `json:"truncated"`
	}
	code, body, err := cl.do("GET", "/files", nil)
	want := []string{".gitignore", "README.md", "docs/.gitignore", "docs/guide.md", "docs/keep.log", "src/app.py"}
	if err != nil || code != 200 || json.Unmarshal(body, &fl) != nil || !slices.Equal(fl.Files, want) || fl.Truncated {
		t.Fatalf("GET /files = %d %s %v, want %q", code, body, err, want)
	}
	code, body, err = cl.do("GET", "/files?glob="+url.QueryEscape("**/*.md"), nil)
	if err != nil || code != 200 || json.Unmarshal(body, &fl) != nil || !slices.Equal(fl.Files, []string{"README.md", "docs/guide.md"}) {
		t.Errorf("GET /files?glob=**/*.md = %d %s %v", code, body, err)
	}

	var ft struct {
		Path       string `json:"path"`
		StartLine  int    `json:"start_line"`
		EndLine    int    `json:"end_line"`
		TotalLines int    `json:"total_lines"`
		Text       string `json:"text"`
	}
	code, body, err = cl.do("GET", "/file?path=src/app.py&start_line=2", nil)
	if err != nil || code != 200 || json.Unmarshal(body, &ft) != nil || ft.Text != "     2\tb = 2\n" || ft.TotalLines != 2 || ft.StartLine != 2 || ft.EndLine != 2 {
		t.Errorf("GET /file?path=src/app.py&start_line=2 = %d %s %v, want line 2 numbered", code, body, err)
	}

	for path, wantCode := range map[string]string{
		".patchd/token": "path_protected",
		".git/config":   "path_git_internals",
		"out/secret":    "path_outside_workspace",
		"../" + filepath.Base(outside) + "/secret": "path_outside_workspace",
	} {
		code, body, err := cl.do("GET", "/file?path="+url.QueryEscape(path), nil)
		var a struct {
			Result struct{ Code, Field, Error string } `json:"result"`
		}
		if err != nil || code != 400 || json.Unmarshal(body, &a) != nil || a.Result.Code != wantCode || a.Result.Field != "path" ||
			strings.Contains(string(body), e.token()) || strings.Contains(string(body), "secret\\n") {
			t.Errorf("GET /file?path=%s = %d %s %v, want 400 %s", path, code, body, err, wantCode)
		}
	}
	code, body, _ = cl.do("GET", "/files?path=.patchd", nil)
	if code != 400 || !strings.Contains(string(body), `"code":"path_protected"`) {
		t.Errorf("GET /files?path=.patchd = %d %s, want 400 path_protected", code, body)
	}

	// What a patch writes is what read_file answers next.
	blk := `{"id":"F1","role":"r","target_file":"src/app.py","patch":{"search":"b = 2","replace":"b = 3"}}`
	if code, body, err := cl.do("POST", "/webhook", []byte(blk)); err != nil || code != 202 {
		t.Fatalf("send F1: %d %s %v", code, body, err)
	}
	waitFor(t, 10*time.Second, "F1 applied", func() bool { p, _ := cl.patch(t, "F1"); return p.State == "applied" })
	code, body, err = cl.do("GET", "/file?path=src/app.py", nil)
	if err != nil || code != 200 || json.Unmarshal(body, &ft) != nil || ft.Text != "     1\ta = 1\n     2\tb = 3\n" {
		t.Errorf("GET /file after F1 = %d %s %v, want b = 3", code, body, err)
	}
}
