package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBlobs(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		id, name string
		data     []byte
	}{
		{"P8.13.22", "0.orig", []byte("old contents\n")},
		{"P8.13.22", "src/app.py", big},
		{"../../etc", "passwd", []byte("stays inside")},
		{".", "..", []byte("dots")},
		{"a%2Fb", "a/b", []byte("escaped percent")},
		{"a/b", "a%2Fb", []byte("escaped slash")},
		{"empty", "file", nil},
	}
	for _, tt := range tests {
		if err := s.PutBlob(tt.id, tt.name, tt.data); err != nil {
			t.Fatalf("PutBlob(%q, %q) = %v", tt.id, tt.name, err)
		}
	}
	s.Close()
	s = openTest(t, dir, Options{})
	for _, tt := range tests {
		got, err := s.Blob(tt.id, tt.name)
		if err != nil || !bytes.Equal(got, tt.data) {
			t.Errorf("Blob(%q, %q) = %d bytes, %v; want %d bytes", tt.id, tt.name, len(got), err, len(tt.data))
		}
	}
	// Everything stayed under blobs/, and no temporary file was left.
	filepath.Walk(filepath.Dir(dir), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(path, filepath.Join(dir, "blobs")+"/") &&
			!strings.HasPrefix(path, filepath.Join(dir, "seg")+"/") &&
			filepath.Dir(path) != dir {
			t.Errorf("file outside blobs: %s", path)
		}
		if err == nil && strings.HasPrefix(info.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})

	if err := s.PutBlob("P8.13.22", "0.orig", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Blob("P8.13.22", "0.orig"); string(got) != "replaced" {
		t.Errorf("Blob after replace = %q, want replaced", got)
	}
	if _, err := s.Blob("P8.13.22", "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Blob(missing) = %v, want ErrNotFound", err)
	}
	if err := s.PutBlob("", "x", nil); err == nil {
		t.Errorf("PutBlob with empty id = nil error, want an error")
	}
	// Names too long for a file system still work, and stay distinct.
	long1, long2 := strings.Repeat("é", 200), strings.Repeat("é", 199)+"e"
	if err := s.PutBlob("x", long1, []byte("1")); err != nil {
		t.Errorf("PutBlob with a long name = %v", err)
	}
	if err := s.PutBlob("x", long2, []byte("2")); err != nil {
		t.Errorf("PutBlob with a long name = %v", err)
	}
	if b1, _ := s.Blob("x", long1); string(b1) != "1" {
		t.Errorf("Blob(long name 1) = %q, want 1", b1)
	}
	if b2, _ := s.Blob("x", long2); string(b2) != "2" {
		t.Errorf("Blob(long name 2) = %q, want 2", b2)
	}
}

func TestEscapeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain-1.2_x", "plain-1.2_x"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a/b", "a%2Fb"},
		{`a\b`, "a%5Cb"},
		{"100%", "100%25"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got, err := escapeName(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("escapeName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("escapeName(%q) and escapeName(%q) are both %q", tt.in, other, got)
		}
		seen[got] = tt.in
	}
}
