//go:build unix

package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		mode  os.FileMode
		owner int // -1: ours
		want  string
	}{
		{"ours 0600", 0o600, -1, ""},
		{"ours 0644", 0o644, -1, ""},
		{"ours 0755 dir", os.ModeDir | 0o755, -1, ""},
		{"ours 0700 dir", os.ModeDir | 0o700, -1, ""},
		{"group-writable", 0o664, -1, "is writable by its group (mode 0664)"},
		{"world-writable", 0o646, -1, "is writable by others (mode 0646)"},
		{"both", os.ModeDir | 0o777, -1, "is writable by group and others (mode 0777)"},
		{"sticky is no excuse", os.ModeDir | os.ModeSticky | 0o777, -1, "mode 0777"},
		{"another user's", 0o600, 65534, "is owned by uid 65534"},
		{"another user's dir", os.ModeDir | 0o700, 65534, "chown -R"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.owner >= 0 && os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.mode.IsDir() {
				mustDo(t, os.Mkdir(p, 0o700))
			} else {
				mustDo(t, os.WriteFile(p, nil, 0o600))
			}
			mustDo(t, os.Chmod(p, tt.mode.Perm()|tt.mode&os.ModeSticky))
			if tt.owner >= 0 {
				mustDo(t, os.Chown(p, tt.owner, tt.owner))
			}
			fi, err := os.Stat(p)
			mustDo(t, err)
			err = CheckPrivate("thing", p, fi)
			var ue *UnsafeError
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckPrivate(%s) = %v, want nil", tt.name, err)
			case tt.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "thing "+p)):
				t.Errorf("CheckPrivate(%s) = %v, want an *UnsafeError naming it and saying %q", tt.name, err, tt.want)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
