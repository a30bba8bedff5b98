package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/patchd/patchd/internal/fsutil"
)

// checkStateDir refuses a state dir, or an entry of it patchd trusts, that
// is owned by another user or writable by group or others (a squatted
// state dir): see fsutil.CheckPrivate. Only the user patchd runs as (and
// root) can then have put anything in it.
func checkStateDir(dir string) error {
	// What patchd reads back from its state dir and acts on, and the
	// directories it writes them in: whoever could write one could plant a
	// config whose checks run, a token of their choosing, an address that
	// clients send the token to, or queued patches.
	trusted := []struct{ name, what string }{
		{".", "state dir"},
		{"config.json", "config file"},
		{"token", "token"},
		{"patchd.json", "state file"},
		{"logs", "log dir"},
		{"queue", "queue dir"},
		{filepath.Join("queue", "journal"), "journal"},
		{filepath.Join("queue", "seg"), "journal segment dir"},
		{filepath.Join("queue", "index.db"), "index"},
		{filepath.Join("queue", "blobs"), "blob dir"},
		{"summaries", "summaries dir"},
	}
	for _, t := range trusted {
		p := filepath.Join(dir, t.name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check %s %s: %w", t.what, p, err)
		}
		if err := fsutil.CheckPrivate(t.what, p, fi); err != nil {
			return err
		}
	}
	return nil
}
