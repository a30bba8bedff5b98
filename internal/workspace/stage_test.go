package workspace

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStage: a staged write changes nothing a reader can see until Commit;
// Abort leaves the tree exactly as it was, made directories included; a
// second Commit is refused.
func TestStage(t *testing.T) {
	fx := newFixture(t)
	target := filepath.Join(fx.wsDir, "a.txt")
	os.WriteFile(target, []byte("old\n"), 0o640)
	before := snapshot(t, fx.wsDir)

	st, err := fx.ws.Stage("a.txt", []byte("new\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "old\n" {
		t.Errorf("after Stage a.txt = %q, want the old content", got)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "new\n" {
		t.Errorf("after Commit a.txt = %q, want the new content", got)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
		t.Errorf("after Commit mode = %v, want 0640 kept", fi.Mode().Perm())
	}
	if err := st.Commit(); err == nil {
		t.Errorf("a second Commit = nil error, want one")
	}
	st.Abort() // after Commit: nothing
	if got, _ := os.ReadFile(target); string(got) != "new\n" {
		t.Errorf("Abort after Commit changed a.txt to %q", got)
	}
	if tmps := tempFiles(t, fx.wsDir); len(tmps) != 0 {
		t.Errorf("temporary files left after Commit: %v", tmps)
	}

	os.WriteFile(target, []byte("old\n"), 0o640)
	for _, rel := range []string{"a.txt", "new/dir/b.txt"} {
		st, err := fx.ws.Stage(rel, []byte("staged\n"), 0)
		if err != nil {
			t.Fatal(err)
		}
		st.Abort()
		st.Abort()
		if err := st.Commit(); err == nil {
			t.Errorf("Commit after Abort of %s = nil error, want one", rel)
		}
	}
	after := snapshot(t, fx.wsDir)
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("aborted Stage left %q behind", name)
		}
	}
	if got, _ := os.ReadFile(target); string(got) != "old\n" {
		t.Errorf("after Abort a.txt = %q, want it untouched", got)
	}
}
