// Package checkspec defines the checks patchd runs after a patch is
// written, as the config file declares them and the worker runs them. It
// is a leaf, so that the worker needs no config package to run checks and
// the config package no worker to describe them.
package checkspec

import (
	"strings"
	"time"
)

// Check is a command run in the workspace after a patch is written; if it
// fails, the patch is undone and fails with the command's output.
type Check struct {
	Name    string        `json:"name"`
	Command []string      `json:"-"`     // argv; a string in the file runs with sh -c
	Timeout time.Duration `json:"-"`     // default 2m
	Paths   []string      `json:"paths"` // globs; the check runs only if a changed file matches (none: always)
	// Env is set in the check's environment, over what PassEnv and the
	// defaults bring; "check-env" of the file merged with the check's own.
	Env map[string]string `json:"-"`
	// PassEnv names variables of patchd's environment the check also gets,
	// besides the defaults (see EnvDefault); never PATCHD_*.
	PassEnv []string `json:"-"`
	// Sandbox confines the check (Linux, Landlock): writes only to the
	// workspace, its temporary directory and Writable; no TCP; no
	// capabilities. Set by the check's "sandbox" or --check-sandbox.
	Sandbox bool `json:"-"`
	// Writable are more directories a sandboxed check may write (absolute),
	// such as a build cache.
	Writable []string `json:"-"`
}

// EnvDefault reports whether a variable of patchd's environment
// reaches a check without being named in pass_env: only what programs need
// to find themselves and speak the user's language (PATH, HOME, USER,
// LOGNAME, LANG, LC_*, TZ). Toolchain settings (GOPATH, GOCACHE, CARGO_HOME,
// VIRTUAL_ENV, ...) and anything secret stay out unless the config file
// passes them; the tools' own defaults derive from HOME. TMPDIR is always
// the check's private temporary directory.
func EnvDefault(name string) bool {
	switch name {
	case "PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}
