package worker

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoConfigImport: the worker takes its checks (checkspec) and the names
// of its settings from its Options; it does not import config, the layer
// above that reads flags and files.
func TestNoConfigImport(t *testing.T) {
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
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/patchd/patchd/internal/config" {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
