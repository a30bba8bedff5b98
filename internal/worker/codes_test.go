package worker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// codePackages are the packages whose errors carry codes (a Code() string
// method), each listing its codes as Code* constants in its codes.go.
var codePackages = []string{"../patch", "../workspace", "../store", ".", "../gateway"}

// TestCodesCatalogue: every code the lower packages give is a constant of
// a codes.go, spelled nowhere else, snake_case, and listed in the README's
// "Error codes" table; no Code method returns a literal.
func TestCodesCatalogue(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n### Error codes\n")
	if !ok {
		t.Fatal(`README.md has no "### Error codes" section`)
	}
	// The table is the first one of the section: its rows run from its
	// header to the first line that is not a row.
	_, table, ok := strings.Cut(sec, "\n| code | field | meaning | from |\n")
	if !ok {
		t.Fatal(`README.md's "Error codes" section has no table "| code | field | meaning | from |"`)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for line := range strings.Lines(table) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if m := row.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
		}
	}

	type file struct {
		name string
		ast  *ast.File
	}
	var files []file
	codes := map[string]string{} // value → constant
	fset := token.NewFileSet()
	for _, dir := range codePackages {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, file{name, f})
			if filepath.Base(name) != "codes.go" {
				continue
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, id := range vs.Names {
						if !strings.HasPrefix(id.Name, "Code") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("%s: %s is not a string literal", name, id.Name)
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						codes[v] = name + ": " + id.Name
					}
				}
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("no Code constants found")
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for v, c := range codes {
		if !snake.MatchString(v) {
			t.Errorf("%s = %q is not snake_case", c, v)
		}
		if !documented[v] {
			t.Errorf("%s = %q is not in README.md's Error codes table", c, v)
		}
	}
	for _, f := range files {
		isCodes := filepath.Base(f.name) == "codes.go"
		ast.Inspect(f.ast, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && !isCodes && codes[v] != "" {
					t.Errorf("%s: the code %q is spelled out; use %s", fset.Position(n.Pos()), v, codes[v])
				}
			case *ast.FuncDecl:
				if n.Name.Name != "Code" || n.Recv == nil || n.Body == nil {
					return true
				}
				ast.Inspect(n.Body, func(m ast.Node) bool {
					if r, ok := m.(*ast.ReturnStmt); ok {
						for _, e := range r.Results {
							if _, lit := e.(*ast.BasicLit); lit {
								t.Errorf("%s: a Code method returns a literal; return a Code constant", fset.Position(e.Pos()))
							}
						}
					}
					return true
				})
			}
			return true
		})
	}
}
