package server

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestThinDoor: the server reaches the patches only through api.Service;
// it imports none of the packages the service stands on (see
// ARCHITECTURE.md).
func TestThinDoor(t *testing.T) {
	banned := map[string]bool{}
	for _, p := range []string{"store", "worker", "patch", "workspace", "patchsvc", "daemon"} {
		banned["github.com/patchd/patchd/internal/"+p] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); banned[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
