// Package histgen builds long synthetic patch histories in a state dir,
// through the store's own API (store.Open, Submit, Update, Close), for the
// history benchmarks of the benchmark command (./bench) and the process
// tests that need a daemon with a long past. Going through the API keeps
// the on-disk format whatever the store on this commit writes.
//
// A history looks like a busy agent's: every patch finished (applied,
// failed with an error and its code, or applied and later reverted), each
// with a description, a role, one of a few thousand target files, the file
// change, a small diff and a ~300-byte body; their times spread evenly
// over the days before the build, ending a while before it (so that a
// daemon started on it does no work for "recent" patches; see Options).
package histgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/store"
)

// Options shapes a history. The zero value gives the defaults.
type Options struct {
	// Workers is how many goroutines submit and update at once (the
	// store commits what they queue together); 0 means 256.
	Workers int
	// Span is how long the history lasts; 0 means 60 days, inside the
	// default retention of 90 days.
	Span time.Duration
	// EndsBefore is how long before now the newest patch finished; 0
	// means 20 minutes (outside the 10 minutes whose summaries a start
	// checks).
	EndsBefore time.Duration
	// Files is how many distinct target files the patches edit; 0 means
	// 2000.
	Files int
	// EventsMaxBytes rotates events.jsonl at this size, as the daemon
	// does at its --log-max-size; 0 means the daemon's default, 10 MiB.
	// (Unrotated, 1,000,000 patches left one 400 MB events.jsonl, which no
	// daemon would have kept, and the first event a daemon appended
	// rotated it.)
	EventsMaxBytes int64
	// Progress, if set, is called now and then with the patches done.
	Progress func(done int)
}

// Result says what Build made.
type Result struct {
	Patches  int
	Applied  int
	Failed   int
	Reverted int
	Took     time.Duration
	// Bytes is the size of the state dir's queue directory and event log
	// after the build.
	Bytes int64
}

// Build creates the patches numbered from 0 to n-1 in stateDir (the
// layout the daemon uses: stateDir/queue and stateDir/events.jsonl),
// with fsync off (store.Options.NoSync): the files are synced once at the
// end. The state dir is created private (0700) as the daemon wants it.
// Patch i has the id "h<i>"; one in 20 failed, one in 100 was reverted.
func Build(ctx context.Context, stateDir string, n int, o Options) (Result, error) {
	if o.Workers <= 0 {
		o.Workers = 256
	}
	if o.Span <= 0 {
		o.Span = 60 * 24 * time.Hour
	}
	if o.EndsBefore <= 0 {
		o.EndsBefore = 20 * time.Minute
	}
	if o.Files <= 0 {
		o.Files = 2000
	}
	if o.EventsMaxBytes <= 0 {
		o.EventsMaxBytes = config.DefaultLogMaxSizeMB << 20
	}
	t0 := time.Now()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return Result{}, fmt.Errorf("create the state dir: %w", err)
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		return Result{}, fmt.Errorf("chmod the state dir: %w", err)
	}
	st, err := store.Open(filepath.Join(stateDir, "queue"), store.Options{
		NoSync: true, EventsPath: filepath.Join(stateDir, "events.jsonl"), EventsMaxBytes: o.EventsMaxBytes,
	})
	if err != nil {
		return Result{}, fmt.Errorf("open the store: %w", err)
	}
	end := t0.Add(-o.EndsBefore)
	begin := end.Add(-o.Span)
	step := time.Duration(0)
	if n > 1 {
		step = o.Span / time.Duration(n-1)
	}
	var (
		next, done                atomic.Int64
		applied, failed, reverted atomic.Int64
		errOnce                   sync.Once
		firstErr                  error
		wg                        sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range o.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				kind, err := one(ctx, st, i, begin.Add(time.Duration(i)*step), o.Files)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				switch kind {
				case store.StateApplied:
					applied.Add(1)
				case store.StateFailed:
					failed.Add(1)
				case store.StateReverted:
					reverted.Add(1)
				}
				if d := done.Add(1); o.Progress != nil && d%100000 == 0 {
					o.Progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	cerr := st.Close()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return Result{}, firstErr
	}
	if cerr != nil {
		return Result{}, fmt.Errorf("close the store: %w", cerr)
	}
	size, err := syncTree(stateDir)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Patches: n, Applied: int(applied.Load()), Failed: int(failed.Load()), Reverted: int(reverted.Load()),
		Took: time.Since(t0), Bytes: size,
	}, nil
}

// roles and verbs make the descriptions and roles vary as an agent's do.
var (
	roles = []string{"refactor", "bugfix", "ui_patch", "docs", "test", "feature", "cleanup"}
	verbs = []string{"Return early when the value is missing", "Rename the helper to say what it does",
		"Show the build id in the page footer", "Handle an empty list without failing",
		"Log the request id with every error", "Split the long function in two", "Fix the off-by-one in paging"}
	dirs = []string{"src", "src/api", "src/ui/components", "lib", "tests", "docs", "scripts"}
)

// File is the target file of patch i among files distinct paths.
func File(i, files int) string {
	k := i % files
	return dirs[k%len(dirs)] + "/module_" + strconv.Itoa(k) + ".py"
}

// one stores patch i, received at at, and takes it to its final state.
func one(ctx context.Context, st *store.Store, i int, at time.Time, files int) (store.State, error) {
	id := "h" + strconv.Itoa(i)
	target := File(i, files)
	role := roles[i%len(roles)]
	desc := verbs[i%len(verbs)] + " (" + strconv.Itoa(i%997) + ")"
	body := `{"id":"` + id + `","role":"` + role + `","target_file":"` + target + `","description":"` + desc +
		`","patch":{"pattern":"VERSION = \"[^\"]*\"","replacement":"VERSION = \"` + strconv.Itoa(i) + `\""},` +
		`"metadata":{"author":"gpt","source":"custom-gpt","reason":"history"}}`
	if _, _, err := st.Submit(ctx, store.Patch{ID: id, Role: role, Target: target, Description: desc, ReceivedAt: at}, []byte(body)); err != nil {
		return "", err
	}
	started := at.Add(3 * time.Millisecond)
	finished := started.Add(9 * time.Millisecond)
	old, nw := hexOf(i, 'a'), hexOf(i, 'b')
	if _, err := st.Update(ctx, id, func(p *store.Patch) error {
		p.State, p.StartedAt = store.StateApplying, started
		p.Files = []store.FileChange{{Path: target, OldHash: old, NewHash: nw, OldMode: 0o644, Existed: true}}
		return nil
	}); err != nil {
		return "", err
	}
	final := store.StateApplied
	if i%20 == 7 {
		final = store.StateFailed
	}
	if _, err := st.Update(ctx, id, func(p *store.Patch) error {
		p.State, p.FinishedAt = final, finished
		if final == store.StateFailed {
			p.Files = nil
			p.Error = `pattern "VERSION = \"[^\"]*\"" matched nothing in ` + target
			p.Code = "no_match"
			return nil
		}
		p.Diff = "--- a/" + target + "\n+++ b/" + target + "\n@@ -1,4 +1,4 @@\n \"\"\"A small web app.\"\"\"\n \n-VERSION = \"" +
			strconv.Itoa(i-1) + "\"\n+VERSION = \"" + strconv.Itoa(i) + "\"\n \n"
		return nil
	}); err != nil {
		return "", err
	}
	if final == store.StateApplied && i%100 == 42 {
		if _, err := st.Update(ctx, id, func(p *store.Patch) error {
			p.State, p.RevertedAt = store.StateReverted, finished.Add(time.Minute)
			return nil
		}); err != nil {
			return "", err
		}
		return store.StateReverted, nil
	}
	return final, nil
}

// hexOf is a 64-character hex string that differs per patch, shaped like
// a SHA-256.
func hexOf(i int, c byte) string {
	s := strconv.FormatInt(int64(i), 16)
	return strings.Repeat(string(c), 64-len(s)) + s
}

// syncTree fsyncs every file and directory under dir (the build wrote them
// without) and returns their total size.
func syncTree(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			return nil
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		serr := f.Sync()
		f.Close()
		return serr
	})
	if err != nil {
		return 0, fmt.Errorf("sync the history: %w", err)
	}
	return size, nil
}

// Copy copies the directory tree src to dst (which must not exist),
// keeping modes; the copy is the daemon's to change. Regular files and
// directories only (a symlink fails it).
func Copy(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(to, fi.Mode().Perm())
		case d.Type().IsRegular():
			return copyFile(p, to, fi.Mode().Perm())
		}
		return errors.New("copy " + p + ": not a regular file or directory")
	})
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	// io.Copy between two files uses copy_file_range on Linux.
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Describe says what a history holds, for a report.
func (r Result) Describe() string {
	return fmt.Sprintf("%d patches (%d applied, %d failed, %d reverted), %.0f MiB, built in %s on %d cores",
		r.Patches, r.Applied, r.Failed, r.Reverted, float64(r.Bytes)/(1<<20), r.Took.Round(time.Second), runtime.NumCPU())
}
