package workspace

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tempFiles lists leftover temporary files anywhere under dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	for name := range snapshot(t, dir) {
		if strings.Contains(name, tempMarker) {
			found = append(found, name)
		}
	}
	return found
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing *fs.FileMode // mode of a file already there, nil for none
		path     string
		mode     fs.FileMode
		wantMode fs.FileMode
	}{
		{name: "new default mode", path: "new.txt", mode: 0, wantMode: 0o644},
		{name: "new given mode", path: "bin/run.sh", mode: 0o750, wantMode: 0o750},
		{name: "new mode ignores umask", path: "shared.txt", mode: 0o666, wantMode: 0o666},
		{name: "new mode drops type bits", path: "x.txt", mode: fs.ModeSetuid | 0o755, wantMode: 0o755},
		{name: "keeps executable", existing: new(fs.FileMode(0o755)), path: "script.sh", mode: 0o644, wantMode: 0o755},
		{name: "keeps private", existing: new(fs.FileMode(0o600)), path: "secret.env", mode: 0, wantMode: 0o600},
		{name: "creates parents", path: "a/b/c/d.txt", mode: 0, wantMode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			full := filepath.Join(fx.wsDir, filepath.FromSlash(tt.path))
			if tt.existing != nil {
				mustNoErr(t, os.MkdirAll(filepath.Dir(full), 0o755))
				mustNoErr(t, os.WriteFile(full, []byte("old\n"), 0o644))
				mustNoErr(t, os.Chmod(full, *tt.existing))
			}
			want := []byte("new content\n")
			if err := fx.ws.WriteFile(tt.path, want, tt.mode); err != nil {
				t.Fatalf("WriteFile(%q) = %v, want nil", tt.path, err)
			}
			got, err := os.ReadFile(full)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("after WriteFile(%q), content = %q, %v, want %q", tt.path, got, err, want)
			}
			fi, err := os.Lstat(full)
			mustNoErr(t, err)
			if fi.Mode() != tt.wantMode {
				t.Errorf("after WriteFile(%q, %v), mode = %v, want %v", tt.path, tt.mode, fi.Mode(), tt.wantMode)
			}
			if left := tempFiles(t, fx.wsDir); len(left) > 0 {
				t.Errorf("after WriteFile(%q), temp files left: %v", tt.path, left)
			}
			data, mode, exists, err := fx.ws.ReadFile(tt.path)
			if err != nil || !exists || !bytes.Equal(data, want) || mode != tt.wantMode {
				t.Errorf("ReadFile(%q) = %q, %v, %v, %v, want %q, %v, true, nil", tt.path, data, mode, exists, err, want, tt.wantMode)
			}
		})
	}
}

func TestWriteFileCreatesParentDirs(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, fx.ws.WriteFile("x/y/z.txt", []byte("z"), 0))
	for _, d := range []string{"x", "x/y"} {
		fi, err := os.Lstat(filepath.Join(fx.wsDir, d))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("after WriteFile(%q), %s = %v, %v, want a 0755 directory", "x/y/z.txt", d, fi, err)
		}
	}
}

// TestWriteFileFailureCleansUp forces a failure after the parent
// directories were made (the final name is too long for the file system)
// and checks that none of them is left.
func TestWriteFileFailureCleansUp(t *testing.T) {
	fx := newFixture(t)
	before := snapshot(t, fx.wsDir)
	p := "newdir/sub/" + strings.Repeat("n", 300)
	if err := fx.ws.WriteFile(p, []byte("x"), 0); err == nil {
		t.Fatalf("WriteFile(300-byte name) = nil, want an error")
	}
	after := snapshot(t, fx.wsDir)
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("failed WriteFile left %q behind", name)
		}
	}
}

// TestWriteFileReadOnlyDir checks that a failed write keeps the old content.
// Root ignores directory permissions, so it only runs unprivileged.
func TestWriteFileReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	fx := newFixture(t)
	dir := filepath.Join(fx.wsDir, "src")
	mustNoErr(t, os.Chmod(dir, 0o555))
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := fx.ws.WriteFile("src/app.py", []byte("new"), 0); err == nil {
		t.Fatalf("WriteFile in a read-only directory = nil, want an error")
	}
	got, err := os.ReadFile(filepath.Join(dir, "app.py"))
	if err != nil || string(got) != "print('hi')\n" {
		t.Errorf("after failed WriteFile, content = %q, %v, want the old content", got, err)
	}
}

// TestWriteFileAtomic has readers race a writer that alternates between two
// contents of different sizes: every read must see one of them whole.
func TestWriteFileAtomic(t *testing.T) {
	fx := newFixture(t)
	contents := [][]byte{
		bytes.Repeat([]byte("a"), 64<<10),
		bytes.Repeat([]byte("b"), 3),
	}
	mustNoErr(t, fx.ws.WriteFile("race.txt", contents[0], 0))
	const writes = 20
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				data, _, exists, err := fx.ws.ReadFile("race.txt")
				if err != nil || !exists {
					t.Errorf("ReadFile during writes = %v, exists=%v, want the file", err, exists)
					return
				}
				if !bytes.Equal(data, contents[0]) && !bytes.Equal(data, contents[1]) {
					t.Errorf("ReadFile during writes saw %d bytes of mixed content", len(data))
					return
				}
			}
		})
	}
	for i := range writes {
		if err := fx.ws.WriteFile("race.txt", contents[i%2], 0); err != nil {
			t.Errorf("WriteFile #%d = %v", i, err)
		}
	}
	close(done)
	wg.Wait()
	if left := tempFiles(t, fx.wsDir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestWriteFileRefusesNonRegular(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, os.Symlink("app.py", filepath.Join(fx.wsDir, "src", "alias.py")))
	tests := []struct {
		name, path, wantReason string
	}{
		{name: "directory", path: "src", wantReason: reasonDir},
		{name: "inside symlink", path: "src/alias.py", wantReason: reasonSymlink},
		{name: "parent is a file", path: "src/app.py/x", wantReason: "has a parent that is not a directory"},
		{name: "root", path: ".", wantReason: reasonRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, fx.wsDir)
			err := fx.ws.WriteFile(tt.path, []byte("x"), 0)
			var pe *PathError
			if !errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, tt.wantReason) {
				t.Errorf("WriteFile(%q) = %v, want reason %q", tt.path, err, tt.wantReason)
			}
			if after := snapshot(t, fx.wsDir); len(after) != len(before) {
				t.Errorf("WriteFile(%q) changed the workspace", tt.path)
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	fx := newFixture(t)
	for _, p := range []string{"nope.txt", "no/such/dir/file.txt"} {
		data, mode, exists, err := fx.ws.ReadFile(p)
		if data != nil || mode != 0 || exists || err != nil {
			t.Errorf("ReadFile(%q) = %q, %v, %v, %v, want nil, 0, false, nil", p, data, mode, exists, err)
		}
	}
}

func TestRemove(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, fx.ws.WriteFile("gone/soon.txt", []byte("x"), 0))
	if err := fx.ws.Remove("gone/soon.txt"); err != nil {
		t.Fatalf("Remove(%q) = %v, want nil", "gone/soon.txt", err)
	}
	if _, err := os.Lstat(filepath.Join(fx.wsDir, "gone", "soon.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, Lstat = %v, want not exist", err)
	}
	for _, p := range []string{"gone/soon.txt", "never/was.txt"} {
		if err := fx.ws.Remove(p); err != nil {
			t.Errorf("Remove(%q) of a missing file = %v, want nil", p, err)
		}
	}
	var pe *PathError
	if err := fx.ws.Remove("src"); !errors.As(err, &pe) || pe.Reason != reasonDir {
		t.Errorf("Remove(%q) = %v, want reason %q", "src", err, reasonDir)
	}
}

func TestClosed(t *testing.T) {
	fx := newFixture(t)
	mustNoErr(t, fx.ws.Close())
	if err := fx.ws.WriteFile("after-close.txt", []byte("x"), 0); err == nil {
		t.Errorf("WriteFile after Close = nil, want an error")
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	for _, name := range []string{".app.py.patchd-tmp-0123456789abcdef", ".app.py.patchd-tmp-fedcba9876543210", ".app.py.patchd-tmp-short", ".other.py.patchd-tmp-0123456789abcdef", "app.py"} {
		os.WriteFile(filepath.Join(dir, "src", name), []byte("x"), 0o644)
	}
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n, err := w.RemoveTemps("src/app.py")
	if err != nil || n != 2 {
		t.Fatalf("RemoveTemps = %d, %v; want 2 removed", n, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "src"))
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Errorf("left %v, want app.py, the other file's temp and the odd name", names)
	}
	if n, err := w.RemoveTemps("missing/dir.py"); n != 0 || err != nil {
		t.Errorf("RemoveTemps in a missing dir = %d, %v; want 0, nil", n, err)
	}
	if _, err := w.RemoveTemps("../x"); err == nil {
		t.Errorf("RemoveTemps(../x) = nil error, want a refusal")
	}
}
