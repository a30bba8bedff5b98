package workspace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"unicode/utf8"
)

// DefaultMode is the permission of a file WriteFile creates when the caller
// passes mode 0.
const DefaultMode fs.FileMode = 0o644

// tempMarker is part of every temporary file name, so a person (or a
// future sweep after a crash) can tell patchd's leftovers from user files.
const tempMarker = ".patchd-tmp-"

// target is a payload path resolved to its real location.
type target struct {
	orig   string // as given, for messages
	parent resolution
	rel    string // real path relative to the root, no links in it
}

// locate validates rel and resolves its parent directory. With create,
// missing parents are made; otherwise a missing parent is reported through
// parent.missing.
func (w *Workspace) locate(rel string, create bool) (target, error) {
	clean, err := w.Check(rel)
	if err != nil {
		return target{}, err
	}
	dir, base := splitRel(clean)
	res, err := w.resolveDir(rel, dir, create, true)
	t := target{orig: rel, parent: res, rel: joinRel(res.dir, base)}
	if err != nil {
		return t, err
	}
	// The parent may have been reached through a link; the final name
	// joined to the real parent must pass the rules too.
	if err := w.checkDenied(rel, t.rel, res.via); err != nil {
		return t, err
	}
	return t, nil
}

// regular looks at the final component without following it. exists is
// false when nothing is there.
func (w *Workspace) regular(t target) (fi fs.FileInfo, exists bool, err error) {
	fi, err = w.root.Lstat(t.rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, mapRootErr(t.orig, ioErrorf("stat %s: %w", t.orig, err))
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, false, refuse(CodePathSymlink, t.orig, reasonSymlink)
	}
	if err := w.checkAlias(t.orig, fi, t.parent.via); err != nil {
		return nil, false, err
	}
	switch {
	case fi.IsDir():
		// EISDIR lets a caller tell a directory from other refusals.
		return nil, false, &PathError{Path: t.orig, Reason: reasonDir, Err: syscall.EISDIR, code: CodePathNotRegular}
	case !fi.Mode().IsRegular():
		return nil, false, refuse(CodePathNotRegular, t.orig, reasonNotRegular)
	}
	return fi, true, nil
}

// ReadFile returns the content and permission bits of a regular file in the
// workspace. A missing file (or missing parent directory) is exists=false
// with a nil error, so callers can tell "create" from "modify" without
// inspecting errors. Symbolic links are refused rather than followed, for
// the same reasons WriteFile refuses them.
func (w *Workspace) ReadFile(rel string) (data []byte, mode fs.FileMode, exists bool, err error) {
	return w.ReadFileMax(rel, 0)
}

// TooLargeError reports a file larger than a caller's limit (ReadFileMax).
type TooLargeError struct {
	Path      string // as given
	Size, Max int64  // Size is at least Max+1 when the file grew while read
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes, more than the %d allowed", e.Path, e.Size, e.Max)
}

// ReadFileMax is ReadFile for a file of at most max bytes (0: any size).
// A larger file is a *TooLargeError, told by its size before anything is
// read; a file that grows past max while being read is one too.
func (w *Workspace) ReadFileMax(rel string, max int64) (data []byte, mode fs.FileMode, exists bool, err error) {
	t, err := w.locate(rel, false)
	if err != nil {
		return nil, 0, false, err
	}
	if t.parent.missing {
		return nil, 0, false, nil
	}
	// Open follows links, so what was opened must be what was checked. A
	// mismatch is usually a concurrent atomic replace (ours or an
	// editor's), so look again a few times before giving up.
	for range 10 {
		data, mode, exists, same, err := w.readChecked(t, max)
		if err != nil || same {
			return data, mode, exists, err
		}
	}
	return nil, 0, false, refuse(CodeFileChanged, rel, "kept changing while being read")
}

// readChecked reads the file if the one opened is the regular file Lstat
// saw. same is false when it was swapped in between.
func (w *Workspace) readChecked(t target, max int64) (data []byte, mode fs.FileMode, exists, same bool, err error) {
	f, fi, exists, same, err := w.openChecked(t)
	if err != nil || !exists || !same {
		return nil, 0, exists, same, err
	}
	defer f.Close()
	if max > 0 && fi.Size() > max {
		return nil, 0, false, false, &TooLargeError{Path: t.orig, Size: fi.Size(), Max: max}
	}
	var r io.Reader = f
	if max > 0 {
		r = io.LimitReader(f, max+1)
	}
	data, err = readAllSized(r, fi.Size())
	if err == nil && max > 0 && int64(len(data)) > max {
		return nil, 0, false, false, &TooLargeError{Path: t.orig, Size: int64(len(data)), Max: max}
	}
	if err != nil {
		return nil, 0, false, false, ioErrorf("read %s: %w", t.orig, err)
	}
	return data, fi.Mode().Perm(), true, true, nil
}

// openChecked opens the file if the one opened is the regular file Lstat
// saw, and returns it open with its FileInfo. same is false (and nothing
// is open) when it was swapped in between; exists is false (and same
// true) when nothing is there.
func (w *Workspace) openChecked(t target) (f *os.File, fi fs.FileInfo, exists, same bool, err error) {
	before, exists, err := w.regular(t)
	if err != nil || !exists {
		return nil, nil, false, true, err
	}
	f, err = w.root.Open(t.rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, false, nil
	}
	if err != nil {
		return nil, nil, false, false, mapRootErr(t.orig, ioErrorf("read %s: %w", t.orig, err))
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, false, false, ioErrorf("read %s: %w", t.orig, err)
	}
	if !fi.Mode().IsRegular() || !os.SameFile(before, fi) {
		f.Close()
		return nil, nil, false, false, nil
	}
	return f, fi, true, true, nil
}

// readAllSized reads r to its end into a buffer sized for size bytes (what
// Stat said), so that a large file is read in one allocation: io.ReadAll
// starts at 512 bytes and copies its way up (27 allocations and 2 MiB of
// garbage for a 1 MiB file). A file that grew meanwhile is still read whole.
func readAllSized(r io.Reader, size int64) ([]byte, error) {
	const maxHint = 1 << 30 // a hint, not a limit: past it the buffer grows as needed
	if size < 0 || size > maxHint {
		size = 0
	}
	// One byte more than the size, so that a file that did not grow ends
	// with the read that returns EOF rather than with a growth.
	buf := make([]byte, 0, size+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// WriteFile replaces (or creates) a regular file atomically and durably: the
// data goes to a temporary file in the same directory, which is synced and
// renamed over the target, and then the directory is synced. Readers see the
// old content or the new, never a mix; after a nil return the new content
// survives a crash. A failure before the rename leaves the old content
// intact and removes the temporary file and any directories made for it; a
// failure of the final directory sync leaves the new content in place, not
// yet known to be durable.
//
// An existing file keeps its permission bits (a 0755 script stays 0755) and,
// where the process may, its owner and group. setuid and setgid bits are
// dropped, as the kernel drops them when a file's content changes. A new
// file gets mode.Perm() exactly (not reduced by the umask), or DefaultMode
// when that is 0. Missing parent directories are created with 0755 and made
// durable too. A target that is a symbolic link, directory or special file is
// refused: writing through a link would change a file the path does not name.
//
// WriteFile is Stage followed by Commit.
func (w *Workspace) WriteFile(rel string, data []byte, mode fs.FileMode) error {
	st, err := w.Stage(rel, data, mode)
	if err != nil {
		return err
	}
	return st.Commit()
}

// Staged is a write prepared by Stage: the new content is durable in a
// temporary file next to the target, which Commit renames into place.
// Until then the target is untouched. Exactly one of Commit and Abort must
// be called.
type Staged struct {
	w     *Workspace
	t     target
	tmp   string // temporary file, relative to the root
	ended bool
}

// Stage does the first half of WriteFile: every check, the parent
// directories, and the new content written to a temporary file and synced.
// A failure leaves nothing behind. Staging the files of a change while
// other work goes on (recording it elsewhere, say) and committing them only
// afterwards takes the slow part, writing and syncing the data, out of
// the critical path.
func (w *Workspace) Stage(rel string, data []byte, mode fs.FileMode) (st *Staged, err error) {
	t, err := w.locate(rel, true)
	defer func() {
		if err != nil {
			w.removeCreated(t.parent.created)
		}
	}()
	if err != nil {
		return nil, err
	}
	perm := mode.Perm()
	if perm == 0 {
		perm = DefaultMode
	}
	old, exists, err := w.regular(t)
	if err != nil {
		return nil, err
	}
	if exists {
		perm = old.Mode().Perm()
	}

	_, base := splitRel(t.rel)
	tmp, f, err := w.createTemp(t.parent.dir, base)
	if err != nil {
		return nil, ioErrorf("write %s: %w", rel, cause(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			w.root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return nil, ioErrorf("write %s: %w", rel, cause(err))
	}
	if exists {
		// Ownership first: chown may clear permission bits on some systems.
		keepOwner(f, old)
	}
	if err := f.Chmod(perm); err != nil {
		return nil, ioErrorf("write %s: set mode: %w", rel, cause(err))
	}
	if err := f.Sync(); err != nil {
		return nil, ioErrorf("write %s: sync: %w", rel, cause(err))
	}
	if err := f.Close(); err != nil {
		return nil, ioErrorf("write %s: %w", rel, cause(err))
	}
	return &Staged{w: w, t: t, tmp: tmp}, nil
}

// Commit renames the staged content over the target and syncs the
// directories, as the second half of WriteFile. If the rename fails the
// staged file and the directories made for it are removed.
func (st *Staged) Commit() error {
	if st.ended {
		return errors.New("staged write of " + st.t.orig + " already ended")
	}
	st.ended = true
	w, t := st.w, st.t
	if err := w.root.Rename(st.tmp, t.rel); err != nil {
		w.root.Remove(st.tmp)
		w.removeCreated(t.parent.created)
		return mapRootErr(t.orig, ioErrorf("write %s: rename: %w", t.orig, err))
	}
	if err := w.syncParents(t.parent); err != nil {
		return ioErrorf("write %s: %w", t.orig, err)
	}
	return nil
}

// Abort removes the staged content and the directories made for it; the
// target stays as it was. It does nothing after Commit or a first Abort.
func (st *Staged) Abort() {
	if st.ended {
		return
	}
	st.ended = true
	st.w.root.Remove(st.tmp)
	st.w.removeCreated(st.t.parent.created)
}

// Remove deletes a regular file and syncs its directory, so the removal
// survives a crash. Removing a file that does not exist is not an error:
// a replay after a crash must be able to repeat it. Symbolic links,
// directories and special files are refused.
func (w *Workspace) Remove(rel string) error {
	t, err := w.locate(rel, false)
	if err != nil {
		return err
	}
	if t.parent.missing {
		return nil
	}
	_, exists, err := w.regular(t)
	if err != nil {
		return err
	}
	if exists {
		if err := w.root.Remove(t.rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return mapRootErr(rel, ioErrorf("remove %s: %w", rel, err))
		}
	}
	// Sync even when the file was already gone: an earlier remove that
	// crashed before its sync may not be durable yet.
	if err := w.syncDir(t.parent.dir); err != nil {
		return ioErrorf("remove %s: %w", rel, err)
	}
	return nil
}

// cause strips the temporary file's name from an error about it: messages
// name the target, as the sender wrote it, not a hidden file with a
// machine path. The errno stays, for errors.Is.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// createTemp makes a new, empty, private file next to the target. O_EXCL
// guarantees it is a file this call created, never an existing file or a
// link planted under a guessed name.
func (w *Workspace) createTemp(dir, base string) (string, *os.File, error) {
	var lastErr error
	for range 10 {
		name := joinRel(dir, tempName(base))
		f, err := w.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return name, f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", nil, ioErrorf("create temporary file: %w", err)
		}
		lastErr = err
	}
	return "", nil, ioErrorf("create temporary file: %w", lastErr)
}

// tempName returns ".<base>.patchd-tmp-<random>". The base is cut short so
// the whole name fits the 255-byte limit of common file systems, at a rune
// boundary because macOS refuses names that are not valid UTF-8.
func tempName(base string) string {
	const maxBase = 200
	if len(base) > maxBase {
		cut := maxBase
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		base = base[:cut]
	}
	var b [8]byte
	rand.Read(b[:])
	return "." + base + tempMarker + hex.EncodeToString(b[:])
}

// syncParents makes a completed write durable: the target's directory holds
// the new entry, and each directory created on the way is an entry in its
// own parent.
func (w *Workspace) syncParents(res resolution) error {
	if err := w.syncDir(res.dir); err != nil {
		return err
	}
	// created[i] is already synced as the parent of created[i+1] or of the
	// target; what remains is the directory each one was made in.
	for i := len(res.created) - 1; i >= 0; i-- {
		if err := w.syncDir(parentDir(res.created[i])); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory inside the root, so renames, creations and
// removals in it reach the disk.
func (w *Workspace) syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := w.root.Open(dir)
	if err != nil {
		return ioErrorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioErrorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// removeCreated undoes the directories a failed write made, innermost
// first, so a refused or failed write leaves the tree as it was. Errors are
// ignored: a directory someone else filled in the meantime stays.
func (w *Workspace) removeCreated(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		w.root.Remove(created[i])
	}
}

// parentDir is path.Dir for a clean relative path, with "" for the root.
func parentDir(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

// RemoveTemps deletes the temporary files that an interrupted WriteFile of
// rel may have left beside it (".<base>.patchd-tmp-<16 hex>"): after a crash
// the worker calls it for each file of the patch it was applying, so no
// leftover shows up in `git status`. It looks in that one directory only.
func (w *Workspace) RemoveTemps(rel string) (int, error) {
	clean, err := w.Check(rel)
	if err != nil {
		return 0, err
	}
	dir, base := path.Split(clean)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	d, err := w.root.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, mapRootErr(rel, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, ioErrorf("list %s: %w", dir, err)
	}
	prefix := "." + base + tempMarker
	n := 0
	for _, name := range names {
		suffix, ok := strings.CutPrefix(name, prefix)
		if !ok || len(suffix) != 16 {
			continue
		}
		if _, err := hex.DecodeString(suffix); err != nil {
			continue
		}
		if err := w.root.Remove(path.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, mapRootErr(rel, err)
		}
		n++
	}
	if n > 0 {
		if err := w.syncDir(dir); err != nil {
			return n, err
		}
	}
	return n, nil
}
