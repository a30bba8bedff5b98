package histgen

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/store"
)

// TestBuild builds a small history and reads it back through a store
// opened as the daemon opens it: every patch there, finished, with the
// shape the package doc promises; a copy reads the same.
func TestBuild(t *testing.T) {
	n := 2000
	if s := os.Getenv("HISTGEN_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := filepath.Join(t.TempDir(), "state")
	const eventsMax = 64 << 10
	res, err := Build(context.Background(), dir, n, Options{EventsMaxBytes: eventsMax})
	if err != nil {
		t.Fatal(err)
	}
	// The event log rotated as a daemon's would, keeping its backups.
	if fi, err := os.Stat(filepath.Join(dir, "events.jsonl")); err != nil {
		t.Error(err)
	} else if fi.Size() > eventsMax {
		t.Errorf("events.jsonl: %d bytes, want it rotated at %d", fi.Size(), eventsMax)
	}
	if rotated, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl*")); len(rotated) == 0 {
		t.Error("no rotated event file beside events.jsonl")
	}
	t.Logf("%s", res.Describe())
	if res.Patches != n || res.Applied+res.Failed+res.Reverted != n || res.Failed != n/20 || res.Bytes == 0 {
		t.Errorf("result %+v, want %d patches, one in 20 failed", res, n)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	cp := filepath.Join(t.TempDir(), "copy")
	if err := Copy(dir, cp); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, cp} {
		t0 := time.Now()
		st, err := store.Open(filepath.Join(d, "queue"), store.Options{EventsPath: filepath.Join(d, "events.jsonl")})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("open %s: %s", filepath.Base(d), time.Since(t0))
		s := st.Stats()
		if s.Total != n || s.Queued != 0 || s.Applying != 0 || s.Failed != res.Failed {
			t.Errorf("%s: stats %+v, want %d patches, none queued or applying, %d failed", d, s, n, res.Failed)
		}
		p, ok := st.Get("h7")
		if !ok || p.State != store.StateFailed || p.Code != "no_match" || p.Target != File(7, 2000) {
			t.Errorf("h7: %+v %v, want failed with no_match on %s", p, ok, File(7, 2000))
		}
		p, ok = st.Get("h1")
		if !ok || p.State != store.StateApplied || p.Diff == "" || len(p.Files) != 1 || !p.FinishedAt.Before(time.Now().Add(-10*time.Minute)) {
			t.Errorf("h1: %+v %v, want applied with a diff and a file, finished over 10 minutes ago", p, ok)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
