package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// MaxDirEntries is the most entries Walk reads from one directory; a
// larger one stops the walk with a *DirTooLargeError, so that a hostile
// directory of millions of names costs a bounded amount of memory.
const MaxDirEntries = 100_000

// MaxWalkDepth is how many directory levels below its start Walk enters:
// it holds one descriptor per level, and a path 4096 bytes long can nest
// 2048 directories. A directory at that depth is visited (with
// WalkEntry.TooDeep set) but not entered.
const MaxWalkDepth = 256

// DirTooLargeError reports a directory with more than MaxDirEntries
// entries.
type DirTooLargeError struct {
	Path string // relative to the root, "" for the root
	Max  int
}

func (e *DirTooLargeError) Error() string {
	return fmt.Sprintf("directory %q has more than %d entries", e.Path, e.Max)
}

// Code returns CodeDirTooLarge.
func (e *DirTooLargeError) Code() string { return CodeDirTooLarge }

// WalkEntry is a directory or regular file Walk visits.
type WalkEntry struct {
	// Path is relative to the workspace root, "" for the root itself.
	Path string
	Dir  bool
	// File is, for a directory, the content of its regular file named
	// WalkOptions.File (nil when it has none); FileErr says why it could
	// not be read: a *TooLargeError over WalkOptions.MaxFile, a
	// *PathError for a symbolic link or one of patchd's files. The file
	// is read through the directory the walk opened, at no cost in
	// resolving its path again.
	File    []byte
	FileErr error
	// TooDeep says the directory is MaxWalkDepth levels below the start:
	// Walk does not enter it.
	TooDeep bool
	// Err says the directory could not be opened (permission denied, an
	// I/O error): Walk does not enter it.
	Err error
}

// WalkOptions says what Walk reads besides the names.
type WalkOptions struct {
	// File is a name Walk reads in each directory, as ".gitignore"; ""
	// for none.
	File string
	// MaxFile bounds File's size in bytes (0: any).
	MaxFile int64
}

// WalkFunc is called by Walk for each entry. For a directory,
// fs.SkipDir skips what is under it; fs.SkipAll ends the walk (Walk
// returns nil); any other error ends it and Walk returns it.
type WalkFunc func(e WalkEntry) error

// entry is one name Walk will visit.
type entry struct {
	name string
	dir  bool
	fi   fs.FileInfo
}

// Walk calls fn for the directory dir (a payload path; "" or "." is the
// root, a trailing slash is allowed) as it really is (symbolic links in
// dir are followed as a patch's path follows them, with the same refusals,
// and fn sees the real path), then for every directory and regular file
// under it, depth first, in the byte order of their paths: fn sees
// "a-b" before "a/c", as a sorted list would.
//
// Below dir, symbolic links are neither followed nor visited, and neither
// are special files, .git (in any letter case), patchd's own files (the
// deny prefixes and protected files, by name and by identity), and names
// no payload path could spell (a backslash, a drive letter). Each
// directory entered is the one its parent listed (device and inode), so a
// directory swapped for a link meanwhile is skipped, not followed. A
// directory is read whole before fn sees its entries: one of more than
// MaxDirEntries ends the walk with a *DirTooLargeError.
//
// A missing dir is a *PathError with code file_not_found, a file one with
// CodeNotDirectory. Walk stops when ctx ends, with its error.
func (w *Workspace) Walk(ctx context.Context, dir string, opts WalkOptions, fn WalkFunc) error {
	start, err := w.walkStart(dir)
	if err != nil {
		return err
	}
	fi, err := w.root.Lstat(rootName(start))
	if err != nil {
		return mapRootErr(dir, ioErrorf("list %s: %w", dir, err))
	}
	if !fi.IsDir() {
		return refuse(CodeFileChanged, dir, "kept changing while being listed")
	}
	r, err := w.root.OpenRoot(rootName(start))
	if err != nil {
		return mapRootErr(dir, ioErrorf("list %s: %w", dir, err))
	}
	err = w.walkDir(ctx, r, start, fi, 0, opts, fn)
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// walkStart validates and resolves the directory a walk starts from.
func (w *Workspace) walkStart(dir string) (string, error) {
	rel := dir
	if trimmed := strings.TrimRight(rel, "/"); trimmed != "" && rel[0] != '/' {
		rel = trimmed
	}
	if rel == "" || rel == "." {
		return "", nil
	}
	clean, err := w.Check(rel)
	if pe, ok := errors.AsType[*PathError](err); ok && pe.Reason == reasonRoot {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	res, err := w.resolveDir(dir, clean, false, true)
	if pe, ok := errors.AsType[*PathError](err); ok && pe.code == CodePathNotRegular {
		// The last component may be the file: say so, not that it
		// has "a parent that is not a directory".
		t, lerr := w.locate(rel, false)
		if lerr != nil {
			return "", lerr
		}
		if !t.parent.missing {
			if _, exists, rerr := w.regular(t); rerr != nil {
				return "", rerr
			} else if exists {
				return "", refuse(CodeNotDirectory, dir, "is a file, not a directory")
			}
		}
	}
	if err != nil {
		return "", err
	}
	if res.missing {
		return "", notFound(dir)
	}
	if err := w.checkDenied(dir, res.dir, res.via); err != nil {
		return "", err
	}
	return res.dir, nil
}

// walkDir calls fn for the directory r, at dir, which must still be the
// directory want describes (else it is skipped), and visits its entries;
// it closes r. Each subdirectory is opened from r, by its name, holding r
// open meanwhile: one descriptor per level, and no path resolved again.
func (w *Workspace) walkDir(ctx context.Context, r *os.Root, dir string, want fs.FileInfo, depth int, opts WalkOptions, fn WalkFunc) error {
	defer r.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	if got, err := r.Stat("."); err != nil || !got.IsDir() || !os.SameFile(want, got) {
		return nil
	}
	e := WalkEntry{Path: dir, Dir: true, TooDeep: depth >= MaxWalkDepth}
	if opts.File != "" {
		e.File, e.FileErr = w.readDirFile(r, joinRel(dir, opts.File), opts.MaxFile)
	}
	if err := fn(e); err != nil || e.TooDeep {
		return err
	}
	entries, err := w.readDir(r, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := joinRel(dir, e.name)
		if !e.dir {
			if err := fn(WalkEntry{Path: p}); err != nil {
				return err
			}
			continue
		}
		// OpenRoot follows a link swapped in meanwhile, but only
		// within r, and the identity check then skips it.
		sub, err := r.OpenRoot(e.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			err := fn(WalkEntry{Path: p, Dir: true, Err: ioErrorf("list %s: %w", p, cause(err))})
			if err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
			continue
		}
		if err := w.walkDir(ctx, sub, p, e.fi, depth+1, opts, fn); err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	return nil
}

// readDirFile reads the file p (in the directory r is) if it is a regular
// file patchd may read: no link followed, none of patchd's own.
func (w *Workspace) readDirFile(r *os.Root, p string, max int64) ([]byte, error) {
	if _, err := w.Check(p); err != nil {
		return nil, err
	}
	_, name := splitRel(p)
	before, err := r.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, ioErrorf("read %s: %w", p, err)
	case before.Mode()&fs.ModeSymlink != 0:
		return nil, refuse(CodePathSymlink, p, reasonSymlink)
	case !before.Mode().IsRegular():
		return nil, refuse(CodePathNotRegular, p, reasonNotRegular)
	}
	if err := w.checkAlias(p, before, ""); err != nil {
		return nil, err
	}
	f, err := r.Open(name)
	if err != nil {
		return nil, ioErrorf("read %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !os.SameFile(before, fi) {
		return nil, refuse(CodeFileChanged, p, "kept changing while being read")
	}
	if max > 0 && fi.Size() > max {
		return nil, &TooLargeError{Path: p, Size: fi.Size(), Max: max}
	}
	var rd io.Reader = f
	if max > 0 {
		rd = io.LimitReader(f, max+1)
	}
	data, err := readAllSized(rd, fi.Size())
	if err != nil {
		return nil, ioErrorf("read %s: %w", p, err)
	}
	if max > 0 && int64(len(data)) > max {
		return nil, &TooLargeError{Path: p, Size: int64(len(data)), Max: max}
	}
	return data, nil
}

// readDir lists the entries of the directory r (at dir) that Walk
// visits, sorted as Walk promises.
func (w *Workspace) readDir(r *os.Root, dir string) ([]entry, error) {
	f, err := r.Open(".")
	if err != nil {
		return nil, ioErrorf("list %s: %w", dir, err)
	}
	defer f.Close()
	var out []entry
	total := 0
	for {
		batch, err := f.ReadDir(1024)
		total += len(batch)
		if total > MaxDirEntries {
			return nil, &DirTooLargeError{Path: dir, Max: MaxDirEntries}
		}
		for _, d := range batch {
			if e, ok := w.visible(dir, d); ok {
				out = append(out, e)
			}
		}
		if err == io.EOF || len(batch) == 0 {
			break
		}
		if err != nil {
			return nil, ioErrorf("list %s: %w", dir, err)
		}
	}
	// A directory sorts as its name and a slash: its paths come after
	// "a-b" and before "a0", as they do in a sorted list.
	key := func(e entry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(key(a), key(b)) })
	return out, nil
}

// visible reports whether Walk visits d, an entry of dir, and with what.
func (w *Workspace) visible(dir string, d fs.DirEntry) (entry, bool) {
	t := d.Type()
	if !t.IsDir() && !t.IsRegular() {
		return entry{}, false
	}
	p := joinRel(dir, d.Name())
	if clean, err := w.Check(p); err != nil || clean != p {
		return entry{}, false
	}
	fi, err := d.Info()
	if err != nil || fi.IsDir() != t.IsDir() || !fi.Mode().IsDir() && !fi.Mode().IsRegular() {
		return entry{}, false
	}
	for _, a := range w.aliases {
		if os.SameFile(fi, a.fi) {
			return entry{}, false
		}
	}
	return entry{name: d.Name(), dir: t.IsDir(), fi: fi}, true
}

// rootName is the name of a relative path for os.Root ("." for the root).
func rootName(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}
