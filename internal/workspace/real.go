package workspace

// RealPath returns the path rel leads to, relative to the root: its clean
// form with every symbolic link of its directories resolved the way
// ReadFile and WriteFile follow them (missing directories taken as
// spelled). It lets a caller refuse a file by where it really is, whatever
// way a payload spells it ("HEAD" and "sub/up/HEAD" through a link sub/up
// → ..). It reads no content, writes nothing, and refuses what ReadFile
// refuses.
func (w *Workspace) RealPath(rel string) (string, error) {
	t, err := w.locate(rel, false)
	if err != nil {
		return "", err
	}
	if t.parent.missing {
		_, base := splitRel(t.rel)
		return joinRel(t.parent.partial, base), nil
	}
	return t.rel, nil
}

// SameName reports whether a path component names the same file as name
// on a case-insensitive file system that ignores the code points HFS+
// ignores (as CleanPath compares ".git").
func SameName(component, name string) bool { return sameName(component, name) }
