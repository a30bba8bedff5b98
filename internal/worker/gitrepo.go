package worker

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/workspace"
)

// gitRepo is the repository patchd's git commands are pinned to: found once
// from the workspace, before the worker's first write, and from then on
// named to git explicitly (GIT_DIR, GIT_WORK_TREE), so that files a patch
// plants in the workspace (HEAD, objects/, refs/, config) can never make
// git take the workspace, or anything in it, for the repository.
type gitRepo struct {
	gitDir, top string
	// above: the work tree's top is above the workspace, so git would
	// look at the workspace itself for a repository (gitOwnNames).
	above bool
	args  []string // leading options of every command
	env   []string // added to the environment of every command
}

// gitSafeArgs are options of every git command patchd runs.
// safe.bareRepository=explicit makes the one discovery refuse a directory
// that merely looks like a repository.
var gitSafeArgs = []string{"-c", "safe.bareRepository=explicit"}

// gitRepo returns the pinned repository, finding it on the first call. A
// failure is returned again and tried again at the next call: nothing is
// kept of it.
func (w *Worker) gitRepo() (*gitRepo, error) {
	if w.repo != nil {
		return w.repo, nil
	}
	r, err := findGitRepo(w.opts.Workspace.Dir())
	if err != nil {
		return nil, fmt.Errorf("--git: %w", err)
	}
	w.repo = r
	return r, nil
}

// findGitRepo finds the repository holding dir, the way git does from
// there, and the environment that pins later commands to it.
func findGitRepo(dir string) (*gitRepo, error) {
	r := &gitRepo{args: gitSafeArgs, env: []string{"GIT_TERMINAL_PROMPT=0", "GIT_LITERAL_PATHSPECS=1"}}
	out, err := r.run(dir, "rev-parse", "--absolute-git-dir", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("find the repository of the workspace %s: %w", dir, err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || lines[1] == "" {
		return nil, fmt.Errorf("find the repository of the workspace %s: git rev-parse said %q", dir, out)
	}
	r.gitDir, r.top = lines[0], lines[1]
	r.env = append(r.env, "GIT_DIR="+r.gitDir, "GIT_WORK_TREE="+r.top)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("find the repository of the workspace %s: %w", dir, err)
	}
	realTop, err := filepath.EvalSymlinks(r.top)
	if err != nil {
		return nil, fmt.Errorf("find the repository of the workspace %s: %w", dir, err)
	}
	r.above = realTop != realDir

	// Commits need a committer; fall back to patchd's own when git has
	// none configured, rather than failing every patch.
	email, err := r.run(dir, "config", "user.email")
	if err != nil || strings.TrimSpace(email) == "" {
		r.env = append(r.env, "GIT_COMMITTER_NAME=patchd", "GIT_COMMITTER_EMAIL=patchd@localhost",
			"GIT_AUTHOR_NAME=patchd", "GIT_AUTHOR_EMAIL=patchd@localhost")
	}
	return r, nil
}

// run runs one git command in dir and returns its standard output; its
// standard error goes into the error only, so that a warning is never
// read as output.
func (r *gitRepo) run(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append(append([]string(nil), r.args...), args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("git %s: %v: %s", args[0], err, msg)
	}
	return stdout.String(), nil
}

// gitNames are the names that make a directory a repository to git
// (HEAD, with objects/ and refs/, or commondir standing for both) or
// configure it (config): a file by one of these names at the top of the
// workspace, or under objects/ or refs/ there, would make git take the
// workspace for a repository when the real one is above it. hooks/, info/
// and index are left alone: they mean nothing without HEAD, and hooks/ is
// a common source directory.
var gitNames = []struct {
	name string
	dir  bool
}{{"HEAD", false}, {"commondir", false}, {"config", false}, {"objects", true}, {"refs", true}}

// gitOwnNames refuses a patch that would write one of git's own names at
// the top of a workspace below its repository's top, wherever the path
// really leads (a link inside the workspace does not hide it).
func (w *Worker) gitOwnNames(r *gitRepo, t *txn) error {
	if !r.above {
		return nil
	}
	for _, p := range t.paths() {
		real, err := w.opts.Workspace.RealPath(p)
		if err != nil {
			return err
		}
		first, _, nested := strings.Cut(real, "/")
		for _, g := range gitNames {
			if workspace.SameName(first, g.name) && (g.dir || !nested) {
				return fmt.Errorf("path %q: with --git and the repository above the workspace (%s), a patch may not write %s at the top of the workspace: git would take the workspace for a repository (refused names: HEAD, commondir, config, objects/, refs/)",
					p, r.top, gitOwnName(g.name, g.dir))
			}
		}
	}
	return nil
}

func gitOwnName(name string, dir bool) string {
	if dir {
		return name + "/"
	}
	return name
}
