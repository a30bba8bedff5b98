package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// look at the workspace itself for a repository (gitRefused).
	above bool
	// prefix is the workspace's path from the work tree's top ("" or
	// ending in "/"): git status names files from there.
	prefix string
	args   []string // leading options of every command
	env    []string // added to the environment of every command
	note   string   // said once in the log: what of the user's config is left out
}

// gitSafeArgs are options of every git command patchd runs: nothing git
// would run on the way (hooks, core.fsmonitor, a signing program, automatic
// gc or maintenance) runs. safe.bareRepository=explicit makes the one
// discovery refuse a directory that merely looks like a repository.
// Filters are neutralised by name (gitRepo.args), once the config is read.
var gitSafeArgs = []string{
	"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
	"-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false",
	"-c", "gc.auto=0", "-c", "maintenance.auto=false",
	"-c", "safe.bareRepository=explicit",
}

// gitRepo returns the pinned repository, finding it on the first call. A
// failure is returned again and tried again at the next call: nothing is
// kept of it.
func (w *Worker) gitRepo() (*gitRepo, error) {
	w.repoMu.Lock()
	defer w.repoMu.Unlock()
	if w.repo != nil {
		return w.repo, nil
	}
	r, err := findGitRepo(w.opts.Workspace.Dir())
	if err != nil {
		return nil, w.answer(withCode(CodeGitFailed, fmt.Errorf("--git: %w", err)))
	}
	if r.note != "" {
		w.log.Warn("--git: " + r.note)
	}
	w.repo = r
	return r, nil
}

// findGitRepo finds the repository holding dir, the way git does from
// there, and the options and environment that pin later commands to it
// and keep them from reading or running anything a patch can write.
func findGitRepo(dir string) (*gitRepo, error) {
	fail := func(err error) (*gitRepo, error) {
		// Not named: the message goes to whoever sent the patch.
		return nil, fmt.Errorf("find the repository of the workspace: %w", err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fail(err)
	}
	// GIT_OPTIONAL_LOCKS=0: a command that only reads (status) takes no
	// lock of the index to save what it learnt there. Previews run such
	// commands while the worker commits, and a commit finding the
	// index.lock of a status would fail. Commands that write the index
	// (add, commit, reset) take its lock all the same.
	r := &gitRepo{args: gitSafeArgs, env: []string{
		"GIT_TERMINAL_PROMPT=0", "GIT_LITERAL_PATHSPECS=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_ATTR_NOSYSTEM=1",
		"GIT_PAGER=cat", "GIT_EDITOR=false", "GIT_OPTIONAL_LOCKS=0",
	}}
	// The user's global config is read unless it lies in the workspace
	// (a workspace at or above the home directory), where a patch can
	// write it.
	for _, p := range globalConfigs() {
		if inWorkspace(realDir, p) {
			r.env = append(r.env, "GIT_CONFIG_GLOBAL=/dev/null")
			r.note = fmt.Sprintf("the global git config %s lies inside the workspace, where a patch can write it; patchd's git commands do not read it", p)
			break
		}
	}
	out, err := r.run(dir, "rev-parse", "--absolute-git-dir", "--show-toplevel")
	if err != nil {
		return fail(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || lines[1] == "" {
		return fail(fmt.Errorf("git rev-parse said %q", out))
	}
	r.gitDir, r.top = lines[0], lines[1]
	r.env = append(r.env, "GIT_DIR="+r.gitDir, "GIT_WORK_TREE="+r.top)
	realTop, err := filepath.EvalSymlinks(r.top)
	if err != nil {
		return fail(err)
	}
	r.above = realTop != realDir
	if rel, err := filepath.Rel(realTop, realDir); err == nil && r.above {
		r.prefix = filepath.ToSlash(rel) + "/"
	}

	out, err = r.run(dir, "config", "--list", "--show-origin", "--includes", "-z")
	if err != nil {
		return fail(err)
	}
	c, err := readGitConfig(out, dir, r.top, realDir)
	if err != nil {
		return nil, err
	}
	email, filters := c.email, c.filters
	// The user's attributes file (core.attributesFile, by default
	// $XDG_CONFIG_HOME/git/attributes) is read unless it lies in the
	// workspace; the workspace's own are refused as targets (gitRefused).
	if attrs := c.attributesFile; attrs != "" && inWorkspace(realDir, attrs) {
		r.args = append(r.args[:len(r.args):len(r.args)], "-c", "core.attributesFile=/dev/null")
		r.note = strings.TrimPrefix(r.note+"; ", "; ") + fmt.Sprintf("the git attributes file %s lies inside the workspace, where a patch can write it; patchd's git commands do not read it", attrs)
	}
	for _, name := range filters {
		if strings.ContainsAny(name, "=\n") {
			return nil, errorf(CodeGitRefused, "git config defines filter %q, whose name patchd cannot override; rename it", name)
		}
		r.args = append(r.args[:len(r.args):len(r.args)], "-c", "filter."+name+".clean=", "-c", "filter."+name+".smudge=", "-c", "filter."+name+".process=")
	}
	// Commits need a committer; fall back to patchd's own when git has
	// none configured, rather than failing every patch.
	if strings.TrimSpace(email) == "" {
		r.env = append(r.env, "GIT_COMMITTER_NAME=patchd", "GIT_COMMITTER_EMAIL=patchd@localhost",
			"GIT_AUTHOR_NAME=patchd", "GIT_AUTHOR_EMAIL=patchd@localhost")
	}
	return r, nil
}

// globalConfigs lists the files git reads as the user's global config,
// whether they exist or not.
func globalConfigs() []string {
	if p := os.Getenv("GIT_CONFIG_GLOBAL"); p != "" {
		return []string{p}
	}
	home := os.Getenv("HOME")
	xdg := os.Getenv("XDG_CONFIG_HOME")
	if xdg == "" && home != "" {
		xdg = filepath.Join(home, ".config")
	}
	var ps []string
	if home != "" {
		ps = append(ps, filepath.Join(home, ".gitconfig"))
	}
	if xdg != "" {
		ps = append(ps, filepath.Join(xdg, "git", "config"))
	}
	return ps
}

// gitConfig is what patchd needs to know of the user's git config.
type gitConfig struct {
	email          string   // user.email
	filters        []string // names of the filter drivers defined
	attributesFile string   // core.attributesFile, or git's default
}

// readGitConfig reads the output of git config --list --show-origin
// --includes -z, run in dir (the workspace) with the work tree's top at
// top, and refuses any config file, or any include
// (include.path, includeIf.*.path, whatever its condition says now), that
// lies inside the workspace, naming it.
func readGitConfig(out, dir, top, realDir string) (gitConfig, error) {
	var c gitConfig
	home := os.Getenv("HOME")
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		c.attributesFile = filepath.Join(xdg, "git", "attributes")
	} else if home != "" {
		c.attributesFile = filepath.Join(home, ".config", "git", "attributes")
	}
	fields := strings.Split(out, "\x00")
	for i := 0; i+1 < len(fields); i += 2 {
		origin, entry := fields[i], fields[i+1]
		key, value, _ := strings.Cut(entry, "\n")
		file, isFile := strings.CutPrefix(origin, "file:")
		if !isFile {
			continue
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if inWorkspace(realDir, file) {
			return c, errorf(CodeGitRefused, "git reads config from %s, which lies inside the workspace, where a patch can write it; move it out of the workspace", file)
		}
		switch {
		case key == "user.email":
			c.email = value
		case key == "core.attributesfile":
			// git reads a relative one from the top of the work tree.
			c.attributesFile = expandHome(value, home, top)
		case key == "include.path" || strings.HasPrefix(key, "includeif.") && strings.HasSuffix(key, ".path"):
			if strings.HasPrefix(value, "%(prefix)/") {
				continue // git's own installation
			}
			if target := expandHome(value, home, filepath.Dir(file)); inWorkspace(realDir, target) {
				return c, errorf(CodeGitRefused, "git config %s has %s = %s: that file lies inside the workspace, where a patch can write it, and git would run what it says (core.fsmonitor, filters); move it out of the workspace or remove the include", file, key, value)
			}
		case strings.HasPrefix(key, "filter."):
			if j := strings.LastIndexByte(key, '.'); j > len("filter.") {
				if name := key[len("filter."):j]; !slices.Contains(c.filters, name) {
					c.filters = append(c.filters, name)
				}
			}
		}
	}
	return c, nil
}

// expandHome reads a path from git config: "~/" is the home directory, a
// relative path is relative to base.
func expandHome(p, home, base string) string {
	switch {
	case strings.HasPrefix(p, "~/"):
		return filepath.Join(home, p[2:])
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(base, p)
}

// inWorkspace reports whether p, resolved through every symbolic link of
// the part of it that exists, lies inside the workspace realDir but not
// under a .git directory: where a patch could write it.
func inWorkspace(realDir, p string) bool {
	p, rest := filepath.Clean(p), ""
	for {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = filepath.Join(real, rest)
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		rest, p = filepath.Join(filepath.Base(p), rest), parent
	}
	rel, err := filepath.Rel(realDir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return false
	}
	for c := range strings.SplitSeq(filepath.ToSlash(rel), "/") {
		if workspace.SameName(c, ".git") {
			return false
		}
	}
	return true
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

// gitRefused refuses a patch that would write a file git reads when it
// commits, as git reads the work tree: .gitattributes and .gitmodules
// anywhere; and, at the top of a workspace below its repository's top,
// git's own names (gitNames). It looks at where each path really leads (a
// link inside the workspace does not hide it), in any letter case.
func (w *Worker) gitRefused(r *gitRepo, t *txn) error {
	for _, p := range t.paths() {
		real, err := w.opts.Workspace.RealPath(p)
		if err != nil {
			return err
		}
		base := real[strings.LastIndexByte(real, '/')+1:]
		if workspace.SameName(base, ".gitattributes") || workspace.SameName(base, ".gitmodules") {
			return errorf(CodePathProtected, "path %q: with --git a patch may not write .gitattributes or .gitmodules: git reads them when it commits (they choose filters, line endings, submodules); change them yourself", p)
		}
		if !r.above {
			continue
		}
		first, _, nested := strings.Cut(real, "/")
		for _, g := range gitNames {
			if workspace.SameName(first, g.name) && (g.dir || !nested) {
				return errorf(CodePathProtected, "path %q: with --git and the repository above the workspace (%s), a patch may not write %s at the top of the workspace: git would take the workspace for a repository (refused names: HEAD, commondir, config, objects/, refs/)",
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
