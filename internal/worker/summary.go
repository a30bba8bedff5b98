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

// SummaryPath is where the summary of the patch id, received at
// received, is kept under dir: dir/YYYY/MM/DD/<id>.md, the UTC date it was
// received. The date never changes with the patch (a patch sent again
// after failing is received anew, and its summary moves with it), so that
// retention finds a summary without reading any directory. Ids are plain
// file names: intake refuses one with a slash.
func SummaryPath(dir, id string, received time.Time) string {
	return filepath.Join(dir, received.UTC().Format("2006/01/02"), id+".md")
}

// summarize writes the summary of a finished patch (SummaryPath). A summary that
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
	path := SummaryPath(dir, p.ID, p.ReceivedAt)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.log.Warn("write summary", "id", p.ID, "err", err)
		return
	}
	if err := fsutil.ReplaceFile(path, []byte(Summary(p)), 0o644); err != nil {
		w.log.Warn("write summary", "id", p.ID, "err", err)
	}
	// An earlier attempt received on another day left its summary there.
	for _, a := range p.Attempts {
		if old := SummaryPath(dir, p.ID, a.ReceivedAt); old != path {
			os.Remove(old)
		}
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
//
// It runs beside the worker, not in its way: the store hands it the
// patches a few hundred at a time, without its lock, and it takes the
// worker's lock only to rewrite one summary, from the patch as the store
// has it then (the worker may have reverted it meanwhile, or be applying
// it again).
func (w *Worker) repairSummaries(since time.Time) (int, error) {
	if w.opts.SummariesDir == "" {
		return 0, nil
	}
	n := 0
	err := w.opts.Store.FinishedSince(since.Add(-repairWindow), func(p store.Patch) error {
		if !summaryLost(w.opts.SummariesDir, p) {
			return nil
		}
		if w.repairing != nil {
			w.repairing(p.ID)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if p, ok := w.opts.Store.Get(p.ID); ok && summaryLost(w.opts.SummariesDir, p) {
			w.summarize(p)
			n++
		}
		return nil
	})
	return n, err
}

// summaryLost says whether p is finished and its summary missing or not
// the size it should have.
func summaryLost(dir string, p store.Patch) bool {
	if p.State == store.StateQueued || p.State == store.StateApplying {
		return false // finished once, then put back (a crash, a full disk)
	}
	fi, err := os.Stat(SummaryPath(dir, p.ID, p.ReceivedAt))
	return err != nil || fi.Size() != int64(len(Summary(p)))
}

// Summary renders the markdown summary of a patch. Every text that comes
// from a payload (id, role, description, file names, notes, an error that
// quotes the patch) is escaped so that it renders as the text the sender
// wrote: on one line, markdown and HTML shown as characters, never able to
// start a heading or a section of its own. Multi-line errors and the diff
// go into fenced blocks that no line of theirs can close.
func Summary(p store.Patch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Patch %s: %s\n\n", mdText(p.ID), p.State)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "- **%s**: %s\n", k, v)
		}
	}
	row("Role", mdText(p.Role))
	if p.Target != "" {
		row("Target", mdCode(p.Target))
	}
	row("Description", mdText(p.Description))
	multiline := strings.ContainsAny(p.Error, "\r\n")
	switch p.State {
	case store.StateApplied, store.StateReverted:
		files := make([]string, len(p.Files))
		for i, f := range p.Files {
			files[i] = mdCode(f.Path)
		}
		row("Result", fmt.Sprintf("applied to %d file(s): %s", len(p.Files), strings.Join(files, ", ")))
	case store.StateFailed:
		if multiline {
			row("Result", "failed (the error is below)")
		} else {
			row("Result", "failed: "+mdText(p.Error))
		}
	}
	for _, n := range p.Notes {
		row("Fitted", mdText(n))
	}
	row("Received", stamp(p.ReceivedAt))
	row("Started", stamp(p.StartedAt))
	row("Finished", stamp(p.FinishedAt))
	if !p.StartedAt.IsZero() && !p.FinishedAt.IsZero() {
		row("Duration", p.FinishedAt.Sub(p.StartedAt).Round(time.Microsecond).String())
	}
	row("Reverted", stamp(p.RevertedAt))
	if p.State == store.StateFailed && multiline {
		fmt.Fprintf(&b, "\n## Error\n\n%s", mdBlock("text", p.Error))
	}
	if p.Diff != "" {
		fmt.Fprintf(&b, "\n## Diff\n\n%s", mdBlock("diff", p.Diff))
	}
	return b.String()
}

// oneLine turns every line break (and any other control character) into a
// space: a value shown in a list row must stay on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}

// mdText is s as markdown text that renders as s (on one line): every
// character with an inline meaning to CommonMark, GitHub's extensions
// (strikethrough, tables, math) or HTML is backslash-escaped, which
// CommonMark defines for all ASCII punctuation. Block syntax (#, -, >, a
// fence) has a meaning only at the start of a line, where no value is.
func mdText(s string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>&|~$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode is s (on one line) as a code span, whose content is literal:
// its backtick fence is longer than any run of backticks in s.
func mdCode(s string) string {
	s = oneLine(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdBlock is s as a fenced code block: the fence is longer than any run of
// backticks in s, so that no line of s can close it.
func mdBlock(info, s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return fence + info + "\n" + s + fence + "\n"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
