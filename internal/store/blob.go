package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// PutBlob durably stores data as blob name of patch id, replacing any
// earlier blob of that name: it returns once the file and its directory
// entry are fsynced, and a crash leaves either the old or the new content.
// Blobs hold content too large for the journal, such as the backups a
// revert needs.
func (s *Store) PutBlob(id, name string, data []byte) error {
	dir, file, err := s.blobPath(id, name)
	if err != nil {
		return err
	}
	label := "blob " + id + "/" + name
	if _, err := os.Stat(dir); err != nil {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return ioFailure("create", label, err)
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return ioFailure("sync", label, err)
		}
	}
	return writeFileAtomic(dir, file, data, label)
}

// Blob returns a blob stored with PutBlob or inline with UpdateBlobs (the
// inline one first); a missing one is ErrNotFound.
func (s *Store) Blob(id, name string) ([]byte, error) {
	probe, _, err := s.find(id)
	if err != nil {
		return nil, err
	}
	if at, n, ok := probe.inlineBlob(name); ok {
		return s.read(at, n, "blob "+id+"/"+name)
	}
	dir, file, err := s.blobPath(id, name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s/%s: %w", id, name, ErrNotFound)
	}
	if err != nil {
		return nil, ioFailure("read", "blob "+id+"/"+name, err)
	}
	return b, nil
}

// inlineBlob finds an inline blob: where it is in the journal and its
// length.
func (e *entry) inlineBlob(name string) (at ref, n int64, ok bool) {
	at, blobs := e.rest().blob, e.rest().blobs
	for _, b := range blobs {
		if b.Name == name {
			return at, b.Len, true
		}
		at.off += b.Len
	}
	return ref{}, 0, false
}

// blobPath maps an id and a name to a directory and a file name that stay
// inside dir/blobs whatever the strings hold.
func (s *Store) blobPath(id, name string) (dir, file string, err error) {
	eid, err := escapeName(id)
	if err != nil {
		return "", "", fmt.Errorf("blob id %q: %w", id, err)
	}
	ename, err := escapeName(name)
	if err != nil {
		return "", "", fmt.Errorf("blob name %q: %w", name, err)
	}
	return filepath.Join(s.dir, "blobs", eid), ename, nil
}

// escapeName turns any non-empty string into a single path element,
// one-to-one: PathEscape escapes '/', '\\' and '%', and a leading '.' (which
// would allow "." and ".." and clash with temporary files) becomes "%2E".
// A result too long for a file name is replaced by "%%" and the SHA-256 of
// the string, which no escaped string can start with.
func escapeName(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	e := url.PathEscape(s)
	if strings.HasPrefix(e, ".") {
		e = "%2E" + e[1:]
	}
	if len(e) > 200 {
		sum := sha256.Sum256([]byte(s))
		e = "%%" + hex.EncodeToString(sum[:])
	}
	return e, nil
}

// writeFileAtomic writes data to dir/name through a temporary file, so
// that readers and crashes see the old or the new content, never a part.
func writeFileAtomic(dir, name string, data []byte, label string) (err error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return ioFailure("create", label, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return ioFailure("write", label, err)
	}
	if err := f.Sync(); err != nil {
		return ioFailure("sync", label, err)
	}
	if err := f.Close(); err != nil {
		return ioFailure("close", label, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return ioFailure("rename", label, err)
	}
	if err := syncDir(dir); err != nil {
		return ioFailure("sync", label, err)
	}
	return nil
}
