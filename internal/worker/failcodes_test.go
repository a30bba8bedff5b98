package worker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/patch"
	"github.com/patchd/patchd/internal/store"
)

// TestFailureCodes: a patch that fails keeps the code of its cause, from
// whichever layer gave it, next to its error; each case on real files.
func TestFailureCodes(t *testing.T) {
	f := newFixture(t)
	f.limits = Limits{Limits: patch.Limits{MaxFileBytes: 1 << 10}, MaxEdits: 2}
	f.checks = []config.Check{{Name: "no-marker", Command: []string{"sh", "-c", "test ! -e fail.marker"}, Timeout: 30 * time.Second}}
	f.store.Close()
	f.open()
	f.write("src/app.py", "unchanged\nunchanged\n", 0o644)
	f.write("big.txt", strings.Repeat("x", 2<<10), 0o644)
	f.write("fail.txt", "ok\n", 0o644)
	os.WriteFile(filepath.Join(f.dir, "outside", "secret.txt"), []byte("secret\n"), 0o644)
	os.Symlink(filepath.Join(f.dir, "outside"), filepath.Join(f.ws, "link"))
	regex := func(id, target, pattern, repl string) string {
		return `{"id":"` + id + `","role":"r","target_file":"` + target + `","patch":{"pattern":"` + pattern + `","replacement":"` + repl + `"}}`
	}
	tests := []struct{ id, body, code string }{
		{"nomatch", regex("nomatch", "src/app.py", "absent", "x"), patch.CodeMatchNotFound},
		{"ambiguous", `{"id":"ambiguous","role":"r","target_file":"src/app.py","patch":{"search":"unchanged","replace":"x"}}`, patch.CodeMatchAmbiguous},
		{"missing", regex("missing", "src/none.py", "x", "y"), patch.CodeFileNotFound},
		{"outside", regex("outside", "link/secret.txt", "secret", "x"), "path_outside_workspace"},
		{"git", regex("git", ".git/config", "x", "y"), "path_git_internals"},
		{"too-large", regex("too-large", "big.txt", "x", "y"), patch.CodeFileTooLarge},
		{"too-many", `{"id":"too-many","role":"r","edits":[` + strings.Repeat(`{"target_file":"fail.txt","search":"ok","replace":"ok"},`, 2) + `{"target_file":"fail.txt","search":"ok","replace":"ok"}]}`, patch.CodeTooManyEdits},
		{"no-change", regex("no-change", "fail.txt", "ok", "ok"), CodeNoChange},
		{"check", `{"id":"check","role":"r","patch":{"diff":"--- /dev/null\n+++ b/fail.marker\n@@ -0,0 +1 @@\n+x\n"}}`, CodeCheckFailed},
	}
	for _, tt := range tests {
		f.submitBody(tt.id, tt.body)
	}
	f.run()
	for _, tt := range tests {
		p := f.settle(tt.id)
		if p.State != store.StateFailed || p.Code != tt.code {
			t.Errorf("%s: %s %q, code %q; want failed, %s", tt.id, p.State, p.Error, p.Code, tt.code)
		}
	}

	// A patch applied, then applied again: the code of its failure goes.
	f.submitBody("ok", regex("ok", "fail.txt", "ok", "fine"))
	if p := f.settle("ok"); p.State != store.StateApplied || p.Code != "" {
		t.Fatalf("ok: %s %q, code %q; want applied without a code", p.State, p.Error, p.Code)
	}

	// Reverts.
	ctx := context.Background()
	revert := []struct {
		name string
		do   func() error
		code string
	}{
		{"unknown patch", func() error { _, err := f.worker.Revert(ctx, "none"); return err }, store.CodeNotFound},
		{"failed patch", func() error { _, err := f.worker.Revert(ctx, "nomatch"); return err }, CodeNotApplied},
		{"file changed", func() error {
			f.write("fail.txt", "edited\n", 0o644)
			_, err := f.worker.Revert(ctx, "ok")
			return err
		}, CodeFileChanged},
		{"worker busy", func() error {
			f.worker.mu.Lock()
			defer f.worker.mu.Unlock()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			_, err := f.worker.Revert(ctx, "ok")
			return err
		}, CodeWorkerBusy},
	}
	for _, tt := range revert {
		if err := tt.do(); codeOf(err) != tt.code {
			t.Errorf("Revert, %s = %v (code %q), want %s", tt.name, err, codeOf(err), tt.code)
		}
	}
}

// TestPreviewCodes: a preview's refusal has the code and the field its
// patch would fail with.
func TestPreviewCodes(t *testing.T) {
	f := newFixture(t)
	f.git = true
	f.store.Close()
	f.open()
	f.write("a.py", "x = 1\n", 0o644)
	tests := []struct{ body, code, field string }{
		{`{"id":"p","role":"r","target_file":"a.py","patch":{"search":"y = 1","replace":"y = 2"}}`, patch.CodeMatchNotFound, "patch.search"},
		{`{"id":"p","role":"r","edits":[{"target_file":"a.py","search":"x","replace":"z"},{"target_file":"b.py","search":"y","replace":"z"}]}`, patch.CodeFileNotFound, "edits[1].target_file"},
		{`{"id":"p","role":"r","target_file":"a.py","patch":{"search":"x","replace":"z"},"metadata":{"author":"<>"}}`, CodeFieldInvalid, "metadata.author"},
	}
	for _, tt := range tests {
		blk, err := patch.Parse([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.worker.Preview(t.Context(), blk)
		var fe interface{ Field() string }
		field := ""
		if errors.As(err, &fe) {
			field = fe.Field()
		}
		if codeOf(err) != tt.code || field != tt.field {
			t.Errorf("Preview(%s) = %v: code %q, field %q; want %s, %q", tt.body, err, codeOf(err), field, tt.code, tt.field)
		}
	}
}
