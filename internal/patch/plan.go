package patch

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
)

// FileReader reads a workspace file for planning; exists=false for a
// missing file. Plan calls it at most once per path.
type FileReader func(path string) (content []byte, exists bool, err error)

// Change is one file's outcome, computed in memory.
type Change struct {
	Path     string
	Old, New []byte // Old nil when the file did not exist; New nil when deleted
	Existed  bool
	Deleted  bool
	// RenamedFrom is the path the new content was moved from, when the
	// change is the destination of a rename (the source is a deletion
	// among the other changes).
	RenamedFrom string
	// Mode is the permission a file the change creates is to get when the
	// patch says (a diff's "new file mode 100755": 0755; 100644: 0644),
	// 0 when it says nothing. Only the executable bits ever differ: no
	// setuid, setgid or sticky bit. An existing file keeps its own mode.
	Mode fs.FileMode
	// Notes say how edits were fitted when they did not match exactly:
	// whitespace ignored, indentation shifted, a hunk found away from its
	// line numbers. They belong in the patch's summary.
	Notes []string
}

// Edit is one edit of a block, in one of the formats: *RegexEdit,
// *SearchReplace, *UnifiedDiff, *ApplyPatch or *AiderText.
type Edit interface {
	// Format names the format: "regex", "search_replace", "diff",
	// "apply_patch" or "aider".
	Format() string
	// Targets lists the workspace paths the edit reads or writes.
	Targets() []string
	apply(w *workset) error
}

// RegexEdit replaces every match of a regular expression in one file, the
// seed's format: {"pattern", "replacement"[, "expand"]}.
type RegexEdit struct {
	TargetFile string
	Regex      Regex
}

// SearchReplace replaces a text that must occur exactly once in the file
// (every occurrence with All): {"search", "replace"[, "all"]}. When the
// text is not found as is, it is looked for line by line ignoring trailing
// whitespace, then with its indentation shifted. An empty Search creates
// the file (or fills an empty one) with Replace.
type SearchReplace struct {
	TargetFile      string
	Search, Replace string
	All             bool
	// wholeLines makes the exact search take only places at the start of
	// a line (an aider block's lines are whole lines).
	wholeLines bool
}

// UnifiedDiff is a git-style or plain unified diff of one or more files:
// {"diff": "..."}.
type UnifiedDiff struct {
	Text  string // as sent
	files []*filePatch
}

// ApplyPatch is a patch in the format of OpenAI's apply_patch tool:
// {"apply_patch": "*** Begin Patch ... *** End Patch"}.
type ApplyPatch struct {
	Text  string // as sent
	files []*filePatch
}

// Format returns "regex".
func (*RegexEdit) Format() string { return "regex" }

// Format returns "search_replace".
func (*SearchReplace) Format() string { return "search_replace" }

// Format returns "diff".
func (*UnifiedDiff) Format() string { return "diff" }

// Format returns "apply_patch".
func (*ApplyPatch) Format() string { return "apply_patch" }

// Targets returns the edit's target file.
func (e *RegexEdit) Targets() []string { return []string{e.TargetFile} }

// Targets returns the edit's target file.
func (e *SearchReplace) Targets() []string { return []string{e.TargetFile} }

// Targets returns every file the diff names: changed, created, deleted,
// and both ends of renames.
func (e *UnifiedDiff) Targets() []string { return filesTargets(e.files) }

// Targets returns every file the patch names, Move to destinations
// included.
func (e *ApplyPatch) Targets() []string { return filesTargets(e.files) }

func filesTargets(files []*filePatch) []string {
	var out []string
	for _, fp := range files {
		out = append(out, fp.targets()...)
	}
	return out
}

func (e *RegexEdit) apply(w *workset) error {
	f, err := w.file(e.TargetFile)
	if err != nil {
		return err
	}
	if !f.exists {
		return errorf(CodeFileNotFound, "target file %s does not exist", e.TargetFile)
	}
	re := e.Regex
	re.Replacement = fileEOL(re.Replacement, f.cur) // the file's line endings, not the patch's
	out, _, err := re.apply(e.TargetFile, f.cur, w.room(f), w.stop)
	if err != nil {
		return err
	}
	return w.write(f, out)
}

func (e *UnifiedDiff) apply(w *workset) error { return applyFiles(w, e.files) }
func (e *ApplyPatch) apply(w *workset) error  { return applyFiles(w, e.files) }

func applyFiles(w *workset, files []*filePatch) error {
	for _, fp := range files {
		if err := fp.apply(w); err != nil {
			return err
		}
	}
	return nil
}

// Plan computes every file change of the block without writing anything:
// all edits of all files, in order (several edits to one file chain on the
// in-memory content). Any failure returns an error and no changes. Files
// an edit touched but left as they were are not among the changes.
//
// A text that is not found or is ambiguous gives a *MatchError; in a block
// with a list of edits, errors are prefixed with the element, as the block
// names it: "edits[2]: search text not found in a.go: ...",
// "patch.edits[2]: ...".
func (b *Block) Plan(read FileReader) ([]Change, error) {
	return b.PlanFiles(read, nil)
}

// FileKey names the file a workspace path leads to, so that two spellings
// of one file (a path through a symbolic link to a directory, say) are one
// file to a plan. An error leaves the path to be told apart by spelling
// (reading it then reports the problem).
type FileKey func(path string) (string, error)

// PlanFiles is Plan with files told apart by key (nil: by their clean
// spelling): edits that reach one file by two paths apply one on top of
// the other, and the change names the file by the path that reached it
// first.
func (b *Block) PlanFiles(read FileReader, key FileKey) ([]Change, error) {
	return b.PlanWithin(context.Background(), read, key, Limits{})
}

// PlanWithin is PlanFiles within limits: a file read or produced past
// lim.MaxFileBytes, or more content held than lim.MaxPatchBytes, fails
// the plan with a *LimitError as soon as an edit would pass it, before
// the content is allocated. Once ctx is done, planning stops at its next
// check (between edits, hunks, lines and matches) with an error wrapping
// ctx's cause; one regular-expression search already under way is not
// interruptible and runs to its end first.
func (b *Block) PlanWithin(ctx context.Context, read FileReader, key FileKey, lim Limits) ([]Change, error) {
	w := &workset{read: read, fileKey: key, files: map[string]*fileState{}, lim: lim, stop: stopper{ctx: ctx, done: ctx.Done()}}
	for i, e := range b.Edits {
		err := w.stop.stopped()
		if err == nil {
			err = e.apply(w)
		}
		if err != nil {
			pe := &PlanError{Index: -1, err: err}
			if b.multi {
				pe.Index, pe.list = i, b.list
			}
			switch {
			case i < len(b.fields):
				pe.ef = b.fields[i]
			case !b.multi && i == 0:
				pe.ef = b.field
			}
			return nil, pe
		}
	}
	return w.changes(), nil
}

// Targets lists the workspace paths the block touches (for path checks at
// intake), including rename sources and destinations, each once, in the
// order the edits name them.
func (b *Block) Targets() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range b.Edits {
		for _, t := range e.Targets() {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// workset holds the files of a plan in memory: as read, and as the edits
// so far left them.
type workset struct {
	read    FileReader
	fileKey FileKey
	files   map[string]*fileState
	order   []*fileState
	lim     Limits
	stop    stopper
	// held is the content the plan holds: every file as read, plus the
	// new content of every file an edit changed (Limits.MaxPatchBytes).
	held int64
}

type fileState struct {
	path        string // as first named
	orig        []byte
	existed     bool
	cur         []byte
	exists      bool
	renamedFrom string
	notes       []string
	aliases     []string // other paths that led to this file
	mode        fs.FileMode
	heldCur     int64 // what held counts for cur, when cur is new content
}

// key identifies a file whatever way an edit spells its path ("./a//b" is
// "a/b", and fileKey sees through links); confinement is the workspace's
// business, not this.
func (w *workset) key(p string) string {
	k := path.Clean(p)
	if w.fileKey != nil {
		if id, err := w.fileKey(k); err == nil {
			return id
		}
	}
	return k
}

// file returns the state of a file, reading it the first time.
func (w *workset) file(p string) (*fileState, error) {
	k := w.key(p)
	if f, ok := w.files[k]; ok {
		if path.Clean(p) != path.Clean(f.path) && !slices.Contains(f.aliases, p) {
			f.aliases = append(f.aliases, p)
			f.note(fmt.Sprintf("%s leads to the same file as %s (through a symbolic link): its edits apply on top of the earlier ones", p, f.path))
		}
		return f, nil
	}
	content, exists, err := w.read(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	switch {
	case !exists:
		content = nil
	case content == nil:
		content = []byte{} // an empty file is still a file
	}
	if lim := w.lim.MaxFileBytes; lim > 0 && int64(len(content)) > lim {
		e := w.lim.limitError(LimitFile, p)
		e.Size = int64(len(content))
		return nil, &e
	}
	w.held += int64(len(content))
	if lim := w.lim.MaxPatchBytes; lim > 0 && w.held > lim {
		e := w.lim.limitError(LimitPatch, p)
		return nil, &e
	}
	f := &fileState{path: p, orig: content, existed: exists, cur: content, exists: exists}
	w.files[k] = f
	w.order = append(w.order, f)
	return f, nil
}

// room is how large an edit may make f: the file limit, or what the patch
// limit leaves, whichever is less.
func (w *workset) room(f *fileState) room {
	r := room{max: math.MaxInt64, limit: LimitError{File: f.path}}
	if lim := w.lim.MaxFileBytes; lim > 0 {
		r.max, r.limit = lim, w.lim.limitError(LimitFile, f.path)
	}
	if lim := w.lim.MaxPatchBytes; lim > 0 {
		if left := lim - (w.held - f.heldCur); left < r.max {
			r.max, r.limit = max(left, 0), w.lim.limitError(LimitPatch, f.path)
		}
	}
	return r
}

// write makes content f's new content, within the room the limits leave.
func (w *workset) write(f *fileState, content []byte) error {
	if err := w.room(f).over(int64(len(content))); err != nil {
		return err
	}
	if content == nil {
		content = []byte{}
	}
	w.held += int64(len(content)) - f.heldCur
	f.cur, f.exists, f.heldCur = content, true, int64(len(content))
	return nil
}

// doc cuts content (f's, or nil for a new one) into lines for an edit,
// within the limits: the lines take lineCost bytes each besides the text,
// which the patch limit counts as held while the edit runs, and the
// content the edit produces may not pass f's room.
func (w *workset) doc(f *fileState, content []byte) (*doc, error) {
	maxLines := math.MaxInt
	if lim := w.lim.MaxPatchBytes; lim > 0 {
		maxLines = int(max(lim-w.held, 0) / lineCost)
		// Counted before the lines are made: a file of newlines only
		// takes 96 bytes a byte.
		if bytes.Count(content, []byte{'\n'}) >= maxLines {
			e := w.lim.limitError(LimitPatch, f.path)
			return nil, &e
		}
	}
	d := newDoc(content)
	d.room, d.stop, d.maxLines = w.room(f), w.stop, maxLines
	d.linesLimit = w.lim.limitError(LimitPatch, f.path)
	return d, nil
}

func (w *workset) remove(f *fileState) {
	w.held -= f.heldCur
	f.cur, f.exists, f.renamedFrom, f.heldCur = nil, false, "", 0
}

func (f *fileState) note(s string) { f.notes = append(f.notes, s) }

// changes lists the files whose content or existence changed, in the
// order the edits first touched them.
func (w *workset) changes() []Change {
	var out []Change
	for _, f := range w.order {
		if f.exists == f.existed && bytes.Equal(f.cur, f.orig) {
			continue
		}
		c := Change{Path: f.path, Existed: f.existed, Deleted: f.existed && !f.exists, RenamedFrom: f.renamedFrom, Notes: f.notes}
		if !f.existed {
			c.Mode = f.mode
		}
		if f.existed {
			c.Old = f.orig
		}
		if f.exists {
			c.New = f.cur
		}
		out = append(out, c)
	}
	return out
}
