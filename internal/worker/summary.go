package worker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
	"github.com/patchd/patchd/internal/store"
)

func ioMode(m uint32) fs.FileMode { return fs.FileMode(m).Perm() }

// summarize writes <summaries>/<id>.md for a finished patch. A summary that
// cannot be written is logged: the patch's outcome is already durable in
// the store, and the summary can be rebuilt from it.
//
// The summary is replaced atomically but not fsynced: it is derived from
// the journal, and its two fsyncs (file and directory) were a fifth of
// the worker's CPU under load. A crash may lose the newest summaries, or
// leave their names empty; RepairSummaries rewrites them after the next
// start.
func (w *Worker) summarize(p store.Patch) {
	dir := w.opts.SummariesDir
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.log.Warn("write summary", "id", p.ID, "err", err)
		return
	}
	path := filepath.Join(dir, p.ID+".md")
	if err := fsutil.ReplaceFile(path, []byte(Summary(p)), 0o644); err != nil {
		w.log.Warn("write summary", "id", p.ID, "err", err)
	}
}

// repairWindow is how far back repairSummaries looks: summaries finished
// longer ago than this before a start were written back by the kernel
// (within 30 s by Linux's defaults) unless the machine crashed right then.
const repairWindow = 10 * time.Minute

// repairSummaries rewrites the summaries that a crash may have lost: those
// of patches finished (or reverted) within repairWindow before since, whose
// file is missing or not the size it should have. It returns how many it
// rewrote.
func (w *Worker) repairSummaries(since time.Time) (int, error) {
	if w.opts.SummariesDir == "" {
		return 0, nil
	}
	recent, err := w.opts.Store.FinishedSince(since.Add(-repairWindow))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range recent {
		if p.State == store.StateQueued || p.State == store.StateApplying {
			continue // finished once, then put back (a crash, a full disk)
		}
		fi, err := os.Stat(filepath.Join(w.opts.SummariesDir, p.ID+".md"))
		if err == nil && fi.Size() == int64(len(Summary(p))) {
			continue
		}
		w.summarize(p)
		n++
	}
	return n, nil
}

// Summary renders the markdown summary of a patch.
func Summary(p store.Patch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Patch %s: %s\n\n", p.ID, p.State)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- **%s**: %s\n", k, v)
		}
	}
	row("Role", p.Role)
	row("Target", "`"+p.Target+"`")
	row("Description", strings.ReplaceAll(p.Description, "\n", " "))
	switch p.State {
	case store.StateApplied, store.StateReverted:
		files := make([]string, len(p.Files))
		for i, f := range p.Files {
			files[i] = "`" + f.Path + "`"
		}
		row("Result", fmt.Sprintf("applied to %d file(s): %s", len(p.Files), strings.Join(files, ", ")))
	case store.StateFailed:
		row("Result", "failed: "+p.Error)
	}
	for _, n := range p.Notes {
		row("Fitted", n)
	}
	row("Received", stamp(p.ReceivedAt))
	row("Started", stamp(p.StartedAt))
	row("Finished", stamp(p.FinishedAt))
	if !p.StartedAt.IsZero() && !p.FinishedAt.IsZero() {
		row("Duration", p.FinishedAt.Sub(p.StartedAt).Round(time.Microsecond).String())
	}
	row("Reverted", stamp(p.RevertedAt))
	if p.Diff != "" {
		fence := "```"
		for strings.Contains(p.Diff, fence) {
			fence += "`"
		}
		fmt.Fprintf(&b, "\n## Diff\n\n%sdiff\n%s%s\n", fence, p.Diff, fence)
	}
	return b.String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
