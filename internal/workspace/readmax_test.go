package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestReadFileMaxSparse: a 20 GiB file (sparse) is refused by its size,
// without reading it; one within the limit is read.
func TestReadFileMaxSparse(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(20 << 30); err != nil {
		t.Skipf("no sparse 20 GiB file here: %v", err)
	}
	f.Close()
	os.WriteFile(filepath.Join(dir, "small.txt"), []byte("hello"), 0o644)
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, _, err = w.ReadFileMax("huge.bin", 64<<20)
	runtime.ReadMemStats(&after)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size != 20<<30 || tl.Max != 64<<20 || tl.Path != "huge.bin" {
		t.Fatalf("ReadFileMax(huge.bin) = %v, want a *TooLargeError with the size and limit", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing it allocated %d bytes", n)
	}
	if data, _, ok, err := w.ReadFileMax("small.txt", 5); err != nil || !ok || string(data) != "hello" {
		t.Errorf("ReadFileMax(small.txt, 5) = %q, %v, %v", data, ok, err)
	}
	if _, _, _, err := w.ReadFileMax("small.txt", 4); !errors.As(err, &tl) {
		t.Errorf("ReadFileMax(small.txt, 4) = %v, want a *TooLargeError", err)
	}
}
