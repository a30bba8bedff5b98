package workspace

import (
	"io/fs"
	"os"
)

// Open opens a regular file of the workspace for reading, confined as
// ReadFile is (the same refusals, the same codes): what is opened is the
// regular file the checks saw, never a symbolic link or a file swapped in
// between. A missing file (or parent) is a *PathError with code
// file_not_found that wraps fs.ErrNotExist. The caller closes the file and
// may read it at its own pace, so a large file need not be read whole.
func (w *Workspace) Open(rel string) (*os.File, error) {
	t, err := w.locate(rel, false)
	if err != nil {
		return nil, err
	}
	if !t.parent.missing {
		for range 10 {
			f, _, exists, same, err := w.openChecked(t)
			switch {
			case err != nil:
				return nil, err
			case exists && same:
				return f, nil
			case !exists && same:
				return nil, notFound(rel)
			}
		}
		return nil, refuse(CodeFileChanged, rel, "kept changing while being opened")
	}
	return nil, notFound(rel)
}

func notFound(rel string) *PathError {
	return &PathError{Path: rel, Reason: "does not exist", Err: fs.ErrNotExist, code: CodeFileNotFound}
}
