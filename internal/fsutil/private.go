package fsutil

import (
	"fmt"
	"io/fs"
)

// UnsafeError reports a file or directory that patchd trusts (its state
// dir, config file, token) but that another user owns or that group or
// others may write: whoever can write it could have planted a config whose
// checks patchd runs, or a token of their choosing.
type UnsafeError struct {
	What    string // "state dir", "config file", ...
	Path    string
	Problem string // whose it is, or its mode
	Fix     string // a command that fixes it
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("%s %s %s: another user could have written what patchd would trust in it (a config's checks, a token); %s",
		e.What, e.Path, e.Problem, e.Fix)
}

// CheckPrivate returns an *UnsafeError when fi, the file or directory at
// path, is owned by a user other than the one patchd runs as (root, who
// can write anything anyway, is accepted too), or is writable by its group
// or others. On systems without Unix owners it accepts everything.
func CheckPrivate(what, path string, fi fs.FileInfo) error {
	uid, ok := ownerOf(fi)
	if !ok {
		return nil
	}
	if me := euid(); uid != me && uid != 0 {
		fix := fmt.Sprintf("if you trust its content, give it to the user patchd runs as: chown %s %s", userName(me), path)
		if fi.IsDir() {
			fix = fmt.Sprintf("remove it (patchd makes a new one), or, if you trust its content, give it to the user patchd runs as: chown -R %s %s", userName(me), path)
		}
		return &UnsafeError{What: what, Path: path, Fix: fix,
			Problem: fmt.Sprintf("is owned by %s, not by %s that patchd runs as", describeUser(uid), describeUser(me))}
	}
	perm := fi.Mode().Perm()
	var who string
	switch {
	case perm&0o022 == 0o022:
		who = "group and others"
	case perm&0o020 != 0:
		who = "its group"
	case perm&0o002 != 0:
		who = "others"
	default:
		return nil
	}
	return &UnsafeError{What: what, Path: path,
		Problem: fmt.Sprintf("is writable by %s (mode %04o)", who, perm),
		Fix:     "check its content, then: chmod go-w " + path}
}

// describeUser is "uid 1000 (alice)", or "uid 1000" without a name.
func describeUser(uid int) string {
	if name := lookupName(uid); name != "" {
		return fmt.Sprintf("uid %d (%s)", uid, name)
	}
	return fmt.Sprintf("uid %d", uid)
}

// userName is the name chown takes: the user's name, or the number.
func userName(uid int) string {
	if name := lookupName(uid); name != "" {
		return name
	}
	return fmt.Sprint(uid)
}
