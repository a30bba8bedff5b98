package workspace

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxPathLen is the longest path, in bytes, that CleanPath accepts. It
// matches PATH_MAX on Linux; nothing longer could be opened anyway, and a
// bound keeps a hostile payload from making every check expensive.
const MaxPathLen = 4096

// Reasons a path is refused. They are fixed strings so tests and callers can
// compare them; reasons that name something (a prefix, a link) are built with
// fmt around these.
const (
	reasonEmpty      = "is empty"
	reasonTooLong    = "is longer than 4096 bytes"
	reasonNUL        = "contains a NUL byte"
	reasonAbsolute   = "is absolute; paths must be relative to the workspace root"
	reasonWindowsAbs = "is a Windows absolute or drive path; paths must be relative to the workspace root"
	reasonBackslash  = "contains a backslash; use forward slashes"
	reasonEscapes    = "escapes the workspace"
	reasonRoot       = "refers to the workspace root itself"
	reasonDirSlash   = "names a directory (ends with a slash)"
	reasonGit        = "refers to git internals"
	reasonSymlink    = "is a symbolic link"
	reasonDir        = "is a directory"
	reasonNotRegular = "is not a regular file"
	reasonLinkLoop   = "has too many levels of symbolic links"
)

// PathError reports why a path from a payload was refused. Path is the path
// exactly as the caller gave it, so the message matches what the sender
// wrote; Reason is a short human-readable explanation.
type PathError struct {
	Path   string
	Reason string
	// Err is the underlying error when the refusal came from the file
	// system (for example os.Root detecting an escape); it may be nil.
	Err error

	code string // Code's answer; "" is CodePathInvalid
}

// Error formats the refusal as `path "../x": escapes the workspace`.
func (e *PathError) Error() string {
	return fmt.Sprintf("path %q: %s", e.Path, e.Reason)
}

// Unwrap returns the underlying file system error, if any.
func (e *PathError) Unwrap() error { return e.Err }

func refuse(code, p, reason string) *PathError {
	return &PathError{Path: p, Reason: reason, code: code}
}

// CleanPath validates a path taken from a payload and returns it in clean,
// slash-separated, relative form. It does no I/O.
//
// Accepted: "src/app.py", "./src/app.py", "src//app.py", "a/../b" (cleaned to
// "src/app.py" or "b"). Refused: empty paths, paths over MaxPathLen bytes,
// NUL bytes, absolute paths (Unix "/x", Windows "\x", "C:\x", "C:x", UNC),
// any backslash (it is a separator on Windows and a file name byte on Unix,
// so its meaning depends on where the patch lands), paths whose cleaned form
// starts with "..", the root itself ("." or "a/.."), a trailing slash (a
// directory), and any component that is ".git" in any letter case.
//
// ".git" is refused anywhere in the path, not only at the top: a nested
// repository's hooks run just as surely as the top-level ones.
func CleanPath(p string) (string, error) {
	clean, err := cleanLexical(p)
	if err != nil {
		return "", err
	}
	if hasGitComponent(clean) {
		return "", refuse(CodePathGit, p, reasonGit)
	}
	return clean, nil
}

// cleanLexical is CleanPath without the .git rule, so Open can validate deny
// prefixes with the same syntax rules.
func cleanLexical(p string) (string, error) {
	switch {
	case p == "":
		return "", refuse(CodePathInvalid, p, reasonEmpty)
	case len(p) > MaxPathLen:
		return "", refuse(CodePathInvalid, p, reasonTooLong)
	case strings.IndexByte(p, 0) >= 0:
		return "", refuse(CodePathInvalid, p, reasonNUL)
	case p[0] == '/':
		return "", refuse(CodePathOutside, p, reasonAbsolute)
	case p[0] == '\\' || hasDriveLetter(p):
		return "", refuse(CodePathOutside, p, reasonWindowsAbs)
	case strings.IndexByte(p, '\\') >= 0:
		return "", refuse(CodePathInvalid, p, reasonBackslash)
	}
	clean := path.Clean(p)
	switch {
	case clean == "..", strings.HasPrefix(clean, "../"):
		return "", refuse(CodePathOutside, p, reasonEscapes)
	case clean == ".":
		return "", refuse(CodePathInvalid, p, reasonRoot)
	case strings.HasSuffix(p, "/"):
		return "", refuse(CodePathInvalid, p, reasonDirSlash)
	case hasDriveLetter(clean):
		// "./C:x" cleans to "C:x"; refusing it keeps CleanPath stable
		// (CleanPath of a result returns the same result).
		return "", refuse(CodePathOutside, p, reasonWindowsAbs)
	}
	return clean, nil
}

// hasDriveLetter reports a "C:" prefix. On Unix "c:foo" is a legal name, but
// a sender writing it almost certainly meant a Windows drive, and accepting
// it would create a file nobody asked for.
func hasDriveLetter(p string) bool {
	if len(p) < 2 || p[1] != ':' {
		return false
	}
	c := p[0]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// hasGitComponent reports whether any component of a clean path names a git
// directory.
func hasGitComponent(clean string) bool {
	for c := range strings.SplitSeq(clean, "/") {
		if sameName(c, ".git") {
			return true
		}
	}
	return false
}

// sameName compares one path component with a refused name the way a
// case-insensitive file system might: ASCII/Unicode case folding, and HFS+
// ignoring certain zero-width code points (the trick behind CVE-2014-9390,
// where ".g\u200cit" opened ".git" on macOS).
func sameName(component, refused string) bool {
	if strings.EqualFold(component, refused) {
		return true
	}
	if !utf8.ValidString(component) || !strings.ContainsFunc(component, hfsIgnorable) {
		return false
	}
	return strings.EqualFold(strings.Map(dropHFSIgnorable, component), refused)
}

// hfsIgnorable lists the code points HFS+ drops when comparing names; it is
// the same set git checks in is_hfs_dotgit.
func hfsIgnorable(r rune) bool {
	switch {
	case r >= 0x200c && r <= 0x200f,
		r >= 0x202a && r <= 0x202e,
		r >= 0x206a && r <= 0x206f,
		r == 0xfeff:
		return true
	}
	return false
}

func dropHFSIgnorable(r rune) rune {
	if hfsIgnorable(r) {
		return -1
	}
	return r
}

// hasPrefixComponents reports whether clean lies at or under prefix,
// comparing whole components with sameName so ".patchdx" does not match
// ".patchd" but ".PATCHD" does.
func hasPrefixComponents(clean, prefix string) bool {
	for {
		pc, prest, pmore := strings.Cut(prefix, "/")
		cc, crest, cmore := strings.Cut(clean, "/")
		if !sameName(cc, pc) {
			return false
		}
		if !pmore {
			return true
		}
		if !cmore {
			return false
		}
		prefix, clean = prest, crest
	}
}

// joinRel joins a resolved directory ("" for the root) and a name.
func joinRel(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return dir + "/" + name
}

// splitRel splits a clean relative path into its directory ("" for the root)
// and final component.
func splitRel(clean string) (dir, base string) {
	i := strings.LastIndexByte(clean, '/')
	if i < 0 {
		return "", clean
	}
	return clean[:i], clean[i+1:]
}
