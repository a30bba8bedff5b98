package workspace

import "fmt"

// FileID names the file rel leads to, whatever way it is spelled, so that a
// caller editing several paths can tell when two of them are one file
// ("a.txt", and "sub/up/a.txt" through a link sub/up → ..). It is the
// file's real path relative to the root, with every symbolic link of its
// directories resolved as ReadFile and WriteFile follow them; missing
// directories are taken as spelled. Where the file exists with a single
// link, it is its device and inode instead, so that the names a
// case-insensitive file system takes for one file also come out as one
// (a file with hard links keeps its path: each name is written on its
// own). It reads no content, writes nothing, and refuses what ReadFile
// refuses.
func (w *Workspace) FileID(rel string) (string, error) {
	t, err := w.locate(rel, false)
	if err != nil {
		return "", err
	}
	if t.parent.missing {
		_, base := splitRel(t.rel)
		return "path:" + joinRel(t.parent.partial, base), nil
	}
	fi, exists, err := w.regular(t)
	if err != nil {
		return "", err
	}
	if exists {
		if dev, ino, ok := soleInode(fi); ok {
			return fmt.Sprintf("inode:%d:%d", dev, ino), nil
		}
	}
	return "path:" + t.rel, nil
}
