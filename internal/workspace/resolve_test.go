package workspace

import (
	"errors"
	"os"
	"testing"
)

// TestMapRootErr pins the message os.Root uses for escapes, which
// mapRootErr matches because the error value is unexported: if a Go release
// changes it, this test says so instead of the mapping silently stopping.
func TestMapRootErr(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	mustNoErr(t, err)
	defer root.Close()
	_, rootErr := root.Open("../x")
	if rootErr == nil {
		t.Fatalf("os.Root.Open(%q) = nil error, want an escape error", "../x")
	}
	var pe *PathError
	if err := mapRootErr("../x", rootErr); !errors.As(err, &pe) || !errors.Is(err, rootErr) {
		t.Errorf("mapRootErr(%v) = %v, want a *PathError wrapping it", rootErr, err)
	}
	other := errors.New("disk on fire")
	if err := mapRootErr("x", other); err != other {
		t.Errorf("mapRootErr(%v) = %v, want it unchanged", other, err)
	}
}

func TestSpliceLink(t *testing.T) {
	tests := []struct {
		dir, target, rest string
		want              string
		wantOK            bool
	}{
		{"", "src", "a.py", "src/a.py", true},
		{"a/b", "../c", "x", "a/c/x", true},
		{"a", "..", "", "", true},
		{"", ".", "x", "x", true},
		{"", "../outside", "x", "", false},
		{"a", "../../outside", "", "", false},
		{"a", "/etc", "passwd", "", false},
		{"a", "", "x", "", false},
	}
	for _, tt := range tests {
		got, ok := spliceLink(tt.dir, tt.target, tt.rest)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("spliceLink(%q, %q, %q) = %q, %v, want %q, %v", tt.dir, tt.target, tt.rest, got, ok, tt.want, tt.wantOK)
		}
	}
}
