package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/patchd/patchd/internal/api"
)

// TestFileEndpoints: GET /file and GET /files answer the service's
// FileText and FileList, need the token, and refuse with code and field
// as every other endpoint: a query parameter that is no number, a bad
// range, a path outside, a missing file (404), a binary one (422).
func TestFileEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	for name, content := range map[string]string{
		"src/app.py": "a = 1\nb = 2\nc = 3\n", "src/util.py": "", "README.md": "# r\n",
		".gitignore": "*.bin\n", "data.bin": "\x00\x01", "bin/x.dat": "x\x00",
	} {
		p := filepath.Join(f.ws.Dir(), filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	get := func(path, token string) *httptest.ResponseRecorder {
		hr := httptest.NewRequest("GET", path, nil)
		if token != "" {
			hr.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, hr)
		return rec
	}

	rec := get("/file?path=src/app.py&start_line=2&end_line=3", testToken)
	var ft api.FileText
	if err := json.Unmarshal(rec.Body.Bytes(), &ft); rec.Code != http.StatusOK || err != nil ||
		ft.Text != "     2\tb = 2\n     3\tc = 3\n" || ft.StartLine != 2 || ft.EndLine != 3 || ft.TotalLines != 3 || ft.Path != "src/app.py" {
		t.Errorf("GET /file = %d %s, want 200 with lines 2-3", rec.Code, rec.Body)
	}
	rec = get("/files?glob=**/*.py", testToken)
	var fl api.FileList
	if err := json.Unmarshal(rec.Body.Bytes(), &fl); rec.Code != http.StatusOK || err != nil || !slices.Equal(fl.Files, []string{"src/app.py", "src/util.py"}) {
		t.Errorf("GET /files?glob=**/*.py = %d %s, want 200 with the two .py files", rec.Code, rec.Body)
	}
	rec = get("/files?path=src&limit=1", testToken)
	if err := json.Unmarshal(rec.Body.Bytes(), &fl); rec.Code != http.StatusOK || err != nil || !slices.Equal(fl.Files, []string{"src/app.py"}) || !fl.Truncated || fl.Note == "" {
		t.Errorf("GET /files?path=src&limit=1 = %d %s, want 200, one file, truncated with a note", rec.Code, rec.Body)
	}
	rec = get("/files", testToken)
	if err := json.Unmarshal(rec.Body.Bytes(), &fl); err != nil || !slices.Equal(fl.Files, []string{".gitignore", "README.md", "bin/x.dat", "src/app.py", "src/util.py"}) {
		t.Errorf("GET /files = %d %s, want what .gitignore leaves", rec.Code, rec.Body)
	}

	refusals := []struct {
		path        string
		status      int
		code, field string
	}{
		{"/file?path=src/app.py", http.StatusUnauthorized, "unauthorized", ""},
		{"/files", http.StatusUnauthorized, "unauthorized", ""},
		{"/file?path=src/app.py&start_line=two", http.StatusBadRequest, "field_invalid", "start_line"},
		{"/file?path=src/app.py&end_line=1.5", http.StatusBadRequest, "field_invalid", "end_line"},
		{"/file?path=src/app.py&start_line=3&end_line=2", http.StatusBadRequest, "field_invalid", "end_line"},
		{"/file?path=src/app.py&start_line=9", http.StatusBadRequest, "field_invalid", "start_line"},
		{"/file?path=../etc/passwd", http.StatusBadRequest, "path_outside_workspace", "path"},
		{"/file?path=/etc/passwd", http.StatusBadRequest, "path_outside_workspace", "path"},
		{"/file?path=.git/config", http.StatusBadRequest, "path_git_internals", "path"},
		{"/file", http.StatusBadRequest, "path_invalid", "path"},
		{"/file?path=src", http.StatusBadRequest, "path_not_regular", "path"},
		{"/file?path=nope.py", http.StatusNotFound, "file_not_found", "path"},
		{"/file?path=data.bin", http.StatusUnprocessableEntity, "file_binary", "path"},
		{"/files?limit=many", http.StatusBadRequest, "field_invalid", "limit"},
		{"/files?limit=5000", http.StatusBadRequest, "field_invalid", "limit"},
		{"/files?glob=[", http.StatusBadRequest, "field_invalid", "glob"},
		{"/files?path=..", http.StatusBadRequest, "path_outside_workspace", "path"},
		{"/files?path=README.md", http.StatusBadRequest, "path_not_directory", "path"},
		{"/files?path=nope", http.StatusNotFound, "file_not_found", "path"},
	}
	for _, tt := range refusals {
		token := testToken
		if tt.code == "unauthorized" {
			token = ""
		}
		rec := get(tt.path, token)
		var a answer
		json.Unmarshal(rec.Body.Bytes(), &a)
		if rec.Code != tt.status || a.Status != "error" || a.Result.Code != tt.code || a.Result.Field != tt.field || a.Result.Error == "" {
			t.Errorf("GET %s = %d %s, want %d with code %s, field %q", tt.path, rec.Code, rec.Body, tt.status, tt.code, tt.field)
		}
	}
}
