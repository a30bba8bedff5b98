package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected outputs (after, error, diff, notes) of testdata/golden and testdata/corpus")

// TestGolden runs each case of testdata/golden/<case>/ (see runCase).
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
			runCase(t, dir)
		})
	}
}

// runCase runs one case directory: patch.json is a whole webhook body,
// planned against the workspace in before and its expectations checked.
//
// A case is either single-file, as the seed's were (before and after are
// files, the content of the block's target_file), or a tree: before/ and
// after/ are directories holding a workspace each (absent means empty, as
// git keeps no empty directory). A refused patch has error instead of
// after. diff holds the unified diff of every change, as a preview shows
// it, and notes the changes' notes, when there are any.
//
// It reports what happened, for the corpus's statistics.
func runCase(t *testing.T, dir string) (res caseResult) {
	t.Helper()
	body := readFile(t, filepath.Join(dir, "patch.json"))
	b, perr := Parse(body)
	if b != nil {
		for _, e := range b.Edits {
			res.formats = append(res.formats, e.Format())
		}
	}
	var meta struct {
		Metadata struct{ Flaw string }
	}
	_ = json.Unmarshal(body, &meta) // the case may be malformed on purpose
	res.flaw = meta.Metadata.Flaw
	before, single := readTree(t, dir, "before", b)
	var changes []Change
	err := perr
	if err == nil {
		changes, err = b.Plan(treeReader(before))
	}
	if err != nil {
		compareGolden(t, filepath.Join(dir, "error"), []byte(err.Error()+"\n"))
		removeGolden(t, filepath.Join(dir, "after"), filepath.Join(dir, "diff"), filepath.Join(dir, "notes"))
		res.err = err
		return res
	}
	removeGolden(t, filepath.Join(dir, "error"))
	after := applyChanges(t, before, changes)
	if single != "" {
		compareGolden(t, filepath.Join(dir, "after"), after[single])
	} else {
		compareTree(t, filepath.Join(dir, "after"), after)
	}
	diff := changesDiff(changes)
	compareGolden(t, filepath.Join(dir, "diff"), []byte(diff))
	var notes []string
	for _, c := range changes {
		for _, n := range c.Notes {
			notes = append(notes, c.Path+": "+n)
		}
	}
	if len(notes) > 0 {
		compareGolden(t, filepath.Join(dir, "notes"), []byte(strings.Join(notes, "\n")+"\n"))
	} else {
		removeGolden(t, filepath.Join(dir, "notes"))
	}
	checkPreviewDiff(t, before, after, changes)
	res.applied, res.notes = true, notes
	return res
}

// caseResult is what runCase saw.
type caseResult struct {
	formats []string // of the block's edits; none when it did not parse
	applied bool
	err     error    // the refusal
	notes   []string // the changes' notes: the tolerance the edit needed
	flaw    string   // the case's metadata.flaw: how the edit is malformed
}

// checkPreviewDiff checks that the diff of the changes, applied by the diff
// format itself, turns before into after: what a preview shows is what the
// patch does.
func checkPreviewDiff(t *testing.T, before, after map[string][]byte, changes []Change) {
	t.Helper()
	for _, c := range changes {
		if d := Diff(c.Path, c.Old, c.New); d != "" {
			checkDiff(t, c.Old, c.New, d)
		}
	}
	diff := changesDiff(changes)
	if diff == "" {
		return
	}
	files, err := parseUnifiedDiff(diff, "")
	if err != nil {
		t.Fatalf("parsing the diff of the changes:\n%s\nerror: %v", diff, err)
	}
	changes2, err := (&Block{Edits: []Edit{&UnifiedDiff{Text: diff, files: files}}}).Plan(treeReader(before))
	if err != nil {
		t.Fatalf("applying the diff of the changes:\n%s\nerror: %v", diff, err)
	}
	if got := applyChanges(t, before, changes2); !maps.EqualFunc(got, after, bytes.Equal) {
		t.Errorf("applying the diff of the changes:\n%s\ngives %q, want %q", diff, got, after)
	}
}

// changesDiff is the unified diff of every change, in order.
func changesDiff(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(Diff(c.Path, c.Old, c.New))
	}
	return b.String()
}

// readTree reads a workspace: a directory, or a single file standing for
// the block's target_file (single is then its path), or nothing.
func readTree(t *testing.T, dir, name string, b *Block) (tree map[string][]byte, single string) {
	t.Helper()
	root := filepath.Join(dir, name)
	tree = map[string][]byte{}
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return tree, ""
	case err != nil:
		t.Fatal(err)
	case !st.IsDir():
		single = "target_file"
		if b != nil && b.TargetFile != "" {
			single = b.TargetFile
		}
		tree[single] = readFile(t, root)
		return tree, single
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		content, err := os.ReadFile(p)
		tree[filepath.ToSlash(rel)] = content
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree, ""
}

// treeReader reads files of an in-memory workspace; it copies contents so
// that a plan that wrote into them would be caught.
func treeReader(tree map[string][]byte) FileReader {
	return func(p string) ([]byte, bool, error) {
		c, ok := tree[filepath.ToSlash(filepath.Clean(p))]
		if !ok {
			return nil, false, nil
		}
		return bytes.Clone(c), true, nil
	}
}

// applyChanges returns the workspace after the changes, checking that each
// change's Old is what the workspace held.
func applyChanges(t *testing.T, before map[string][]byte, changes []Change) map[string][]byte {
	t.Helper()
	after := maps.Clone(before)
	for _, c := range changes {
		p := filepath.ToSlash(filepath.Clean(c.Path))
		old, existed := after[p]
		if existed != c.Existed || !bytes.Equal(old, c.Old) || (c.Old == nil) != !c.Existed {
			t.Fatalf("change of %s: Existed %v, Old %q; the workspace had %v, %q", c.Path, c.Existed, c.Old, existed, old)
		}
		if c.Deleted != (c.New == nil) {
			t.Fatalf("change of %s: Deleted %v with New %q", c.Path, c.Deleted, c.New)
		}
		if c.Deleted {
			delete(after, p)
		} else {
			after[p] = c.New
		}
	}
	return after
}

// compareTree checks a workspace against the directory name, or rewrites
// it with -update.
func compareTree(t *testing.T, name string, got map[string][]byte) {
	t.Helper()
	if *update {
		if err := os.RemoveAll(name); err != nil {
			t.Fatal(err)
		}
		for p, c := range got {
			f := filepath.Join(name, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, c, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	if st, err := os.Stat(name); err == nil && !st.IsDir() {
		t.Fatalf("%s is a file, want a directory", name)
	}
	want, _ := readTree(t, filepath.Dir(name), filepath.Base(name), nil)
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: got no file %s, want %q", name, p, want[p])
		} else if !bytes.Equal(g, want[p]) {
			t.Errorf("%s/%s: got\n%q\nwant\n%q", name, p, g, want[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: got file %s = %q, want none", name, p, got[p])
		}
	}
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
		t.Errorf("%s: got\n%s\nwant\n%s\n(quoted: got %q)", name, got, want, got)
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
		if err := os.RemoveAll(name); err != nil {
			t.Fatal(err)
		}
	}
}
