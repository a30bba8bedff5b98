package workspace

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// walkAll returns what Walk visits, directories with a trailing slash.
func walkAll(t *testing.T, w *Workspace, dir string, opts WalkOptions) ([]string, map[string]WalkEntry, error) {
	t.Helper()
	var got []string
	dirs := map[string]WalkEntry{}
	err := w.Walk(context.Background(), dir, opts, func(e WalkEntry) error {
		if e.Dir {
			got = append(got, e.Path+"/")
			dirs[e.Path] = e
		} else {
			got = append(got, e.Path)
		}
		return nil
	})
	return got, dirs, err
}

// TestWalk: byte order of the paths, the real path of a start reached
// through a link, and none of what Walk leaves out: links (not followed),
// special files, .git, patchd's files by name and by identity, names no
// payload path can spell.
func TestWalk(t *testing.T) {
	tr, w := openTree(t)
	for _, name := range []string{"a-b.txt", "a0.txt", "a/c.txt", "sub/.Git/x", `back\slash/y`, "dir/.gitignore"} {
		p := filepath.Join(tr.Dir, filepath.FromSlash(name))
		mustNoErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustNoErr(t, os.WriteFile(p, []byte("*.o\n"), 0o644))
	}
	mustNoErr(t, syscall.Mkfifo(filepath.Join(tr.Dir, "fifo"), 0o644))
	got, dirs, err := walkAll(t, w, "", WalkOptions{File: ".gitignore", MaxFile: 100})
	want := []string{"/", "a-b.txt", "a.txt", "a/", "a/c.txt", "a0.txt", "ci/", "dir/", "dir/.gitignore", "dir/b.txt", "src/", "src/app.py", "sub/"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Walk(root) = %q, %v\nwant %q", got, err, want)
	}
	if string(dirs["dir"].File) != "*.o\n" || dirs[""].File != nil {
		t.Errorf("Walk's File of dir = %q, of the root %q; want the .gitignore of dir only", dirs["dir"].File, dirs[""].File)
	}
	got, _, err = walkAll(t, w, "srclink/", WalkOptions{})
	if want := []string{"src/", "src/app.py"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Walk(srclink/) = %q, %v, want %q", got, err, want)
	}
	_, _, err = walkAll(t, w, "a.txt", WalkOptions{})
	if c := codeOfErr(err); c != CodeNotDirectory {
		t.Errorf("Walk(a.txt) = %v, want code %s", err, CodeNotDirectory)
	}
	_, _, err = walkAll(t, w, "nope", WalkOptions{})
	if c := codeOfErr(err); c != CodeFileNotFound || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Walk(nope) = %v, want code %s", err, CodeFileNotFound)
	}
	// SkipAll ends the walk without an error; SkipDir skips a directory.
	var seen []string
	err = w.Walk(context.Background(), "", WalkOptions{}, func(e WalkEntry) error {
		seen = append(seen, e.Path)
		switch {
		case e.Path == "a":
			return fs.SkipDir
		case e.Path == "dir/b.txt":
			return fs.SkipAll
		}
		return nil
	})
	if want := []string{"", "a-b.txt", "a.txt", "a", "a0.txt", "ci", "dir", "dir/.gitignore", "dir/b.txt"}; err != nil || !slices.Equal(seen, want) {
		t.Errorf("Walk with SkipDir and SkipAll saw %q, %v, want %q", seen, err, want)
	}
	// A .gitignore over the bound, or a link, is not read.
	mustNoErr(t, os.WriteFile(filepath.Join(tr.Dir, "src", ".gitignore"), make([]byte, 200), 0o644))
	mustNoErr(t, os.Symlink("../.patchd/token", filepath.Join(tr.Dir, "a", ".gitignore")))
	_, dirs, _ = walkAll(t, w, "", WalkOptions{File: ".gitignore", MaxFile: 100})
	if _, ok := errors.AsType[*TooLargeError](dirs["src"].FileErr); !ok || dirs["src"].File != nil {
		t.Errorf("Walk's File of src = %d bytes, %v; want a *TooLargeError", len(dirs["src"].File), dirs["src"].FileErr)
	}
	if codeOfErr(dirs["a"].FileErr) != CodePathSymlink || dirs["a"].File != nil {
		t.Errorf("Walk's File of a = %q, %v; want a symbolic link refused", dirs["a"].File, dirs["a"].FileErr)
	}
}

// codeOfErr is the code of err's first coded error, for tests.
func codeOfErr(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}
