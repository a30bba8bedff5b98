package worker

import (
	"fmt"
	"strings"

	"github.com/patchd/patchd/internal/patch"
)

// git runs git in the workspace, pinned to the repository found at the
// first call (gitRepo). Arguments from a payload (paths, the message, the
// author, the tag) are passed as arguments, never through a shell, after
// "--" where git would read them as options, and paths as literal names
// (GIT_LITERAL_PATHSPECS): a target named "*" or ":(glob)**" must not
// sweep the whole work tree into a commit.
func (w *Worker) git(args ...string) (string, error) {
	r, err := w.gitRepo()
	if err != nil {
		return "", err
	}
	out, err := r.run(w.opts.Workspace.Dir(), args...)
	return out, w.answer(withCode(CodeGitFailed, err))
}

func (t *txn) paths() []string {
	ps := make([]string, len(t.files))
	for i, f := range t.files {
		ps[i] = f.path
	}
	return ps
}

// gitClean refuses a patch over uncommitted changes to the files it touches:
// its commit would sweep them in, and a revert would lose them.
func (w *Worker) gitClean(t *txn) error {
	r, err := w.gitRepo()
	if err != nil {
		return err
	}
	out, err := r.run(w.opts.Workspace.Dir(), append([]string{"status", "--porcelain", "-z", "--"}, t.paths()...)...)
	if err != nil {
		return err
	}
	dirty := statusPaths(out)
	// Named as the patch names them, from the workspace.
	for i, d := range dirty {
		dirty[i] = strings.TrimPrefix(d, r.prefix)
	}
	if len(dirty) > 0 {
		return errorf(CodeGitRefused, "uncommitted changes to %s: commit or stash them first (--git commits each patch)", strings.Join(dirty, ", "))
	}
	return nil
}

// gitCommit commits the transaction's files as one commit (and tags it:
// patch.Parse has checked the tag).
// A commit that fails leaves the index as it found it: the caller restores
// the files, and a staged copy of the patch must not outlive them.
func (w *Worker) gitCommit(t *txn, subject, author, tag string) (string, error) {
	if _, err := w.git(append([]string{"add", "-A", "--"}, t.paths()...)...); err != nil {
		return "", err
	}
	args := []string{"commit", "-q", "--no-verify", "-m", subject}
	if author != "" {
		args = append(args, "--author", author)
	}
	args = append(args, "--")
	args = append(args, t.paths()...)
	if _, err := w.git(args...); err != nil {
		if _, rerr := w.git(append([]string{"reset", "-q", "--"}, t.paths()...)...); rerr != nil {
			return "", fmt.Errorf("%w; and unstaging the files failed: %v", err, rerr)
		}
		return "", err
	}
	rev, err := w.git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "", err
	}
	if tag != "" {
		if _, err := w.git("tag", tag); err != nil {
			return strings.TrimSpace(rev), err
		}
	}
	return strings.TrimSpace(rev), nil
}

// gitVet refuses, under --git, a planned patch that apply must not write:
// no repository found, a file git reads (gitRefused), uncommitted changes
// to its files (gitClean). Apply and preview ask it alike.
func (w *Worker) gitVet(t *txn) error {
	r, err := w.gitRepo()
	if err == nil {
		err = w.gitRefused(r, t)
	}
	if err == nil {
		err = w.gitClean(t)
	}
	return w.answer(err)
}

// blockAuthor is gitAuthor of the block's metadata.author.
func blockAuthor(blk *patch.Block) (string, error) {
	a, _ := blk.Metadata["author"].(string)
	return gitAuthor(a)
}

// maxAuthor bounds metadata.author: it becomes one argument of git.
const maxAuthor = 256

// gitAuthor turns metadata.author into git's "Name <email>" ("" for none:
// the commit gets git's own identity). It refuses what git would refuse,
// so that the patch fails before anything is written rather than at its
// commit: a name that is empty or only punctuation (git strips ".,:;<>\"'"
// and spaces from its ends), a name or an email holding "<" or ">".
func gitAuthor(a string) (string, error) {
	a = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(a))
	if a == "" {
		return "", nil
	}
	bad := func(why string) (string, error) {
		return "", &fieldError{codedError{CodeFieldInvalid, fmt.Errorf("metadata.author %q: %s; use \"Name <email>\" or a plain name", a, why)}, "metadata.author"}
	}
	if len(a) > maxAuthor {
		return bad(fmt.Sprintf("longer than %d bytes", maxAuthor))
	}
	name, email := a, ""
	if i := strings.IndexByte(a, '<'); i >= 0 && strings.HasSuffix(a, ">") {
		name, email = strings.TrimSpace(a[:i]), a[i+1:len(a)-1]
		if strings.ContainsAny(email, "<>") {
			return bad("the email holds < or >")
		}
	}
	if strings.ContainsAny(name, "<>") {
		return bad("the name holds < or >")
	}
	if strings.TrimFunc(name, func(r rune) bool { return r <= ' ' || strings.ContainsRune(".,:;<>\"\\'", r) }) == "" {
		return bad("the name is empty or only punctuation")
	}
	if name == a {
		email = strings.ReplaceAll(strings.ToLower(strings.Fields(a)[0]), "@", "") + "@patchd.invalid"
	}
	return name + " <" + email + ">", nil
}
