package patch

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the after, error and diff files of testdata/golden")

// TestGolden runs each case of testdata/golden/<case>/: patch.json is a
// whole webhook body, applied to before. The case expects after (and the
// diff between them, in diff) or, for a refused patch, the error text.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("found %d golden cases, want at least 8", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			body := readFile(t, filepath.Join(dir, "patch.json"))
			before := readFile(t, filepath.Join(dir, "before"))
			after, diff, err := runGolden(body, before)
			if err != nil {
				compareGolden(t, filepath.Join(dir, "error"), []byte(err.Error()+"\n"))
				removeGolden(t, filepath.Join(dir, "after"), filepath.Join(dir, "diff"))
				return
			}
			compareGolden(t, filepath.Join(dir, "after"), after)
			compareGolden(t, filepath.Join(dir, "diff"), []byte(diff))
			removeGolden(t, filepath.Join(dir, "error"))
			checkDiff(t, before, after, diff)
		})
	}
}

func runGolden(body, before []byte) (after []byte, diff string, err error) {
	b, err := Parse(body)
	if err != nil {
		return nil, "", err
	}
	after, _, err = b.Patch.Apply(b.TargetFile, before)
	if err != nil {
		return nil, "", err
	}
	return after, Diff(b.TargetFile, before, after), nil
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compareGolden checks got against the file, or rewrites it with -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %s:\n%s\nbut the case has no %s (run go test -update)", filepath.Base(name), got, name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got\n%q\nwant\n%q", name, got, want)
	}
}

// removeGolden deletes, with -update, expectations the case no longer has;
// without it, their presence is a failure.
func removeGolden(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := os.Stat(name); err != nil {
			continue
		}
		if !*update {
			t.Errorf("%s exists, but the case gave no such output", name)
			continue
		}
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}
