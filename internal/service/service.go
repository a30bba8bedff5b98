// Package service renders the definitions that run `patchd run` under a
// supervisor: a PM2 ecosystem file, a systemd service and socket unit, and a
// launchd property list.
//
// Every definition is written around patchd's contract: exit code 0 is a
// deliberate stop and is never restarted; 4 (no port) and 5 (already
// running, with --if-running=exit) are not retried where the supervisor can
// tell exit codes apart; and the supervisor waits longer than patchd's drain
// time before it sends SIGKILL, so that requests in flight finish.
//
// The renderers are pure functions of the Spec: they read no file and no
// environment, so the same Spec always yields the same text, which the tests
// pin in golden files.
package service

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultName is the service name used when Spec.Name is empty.
const DefaultName = "patchd"

// patchd's own defaults, repeated here because a definition must know them
// when the flags leave them out; internal/config is where they are defined.
const (
	defaultHost         = "127.0.0.1"
	defaultPort         = 5555
	defaultDrain        = 10 * time.Second
	defaultStartTimeout = 15 * time.Second
)

// Exit codes of `patchd run` that the definitions treat specially.
const (
	exitNoPort         = 4
	exitAlreadyRunning = 5
	// exitStopped is `patchd run` stopped by `patchd stop` under PM2, which
	// reports a death by signal as 0 and so cannot leave 0 stopped.
	exitStopped = 6
)

const (
	// stopMargin is added to the drain time before a supervisor may kill:
	// after the drain, patchd still finishes the patch it is applying,
	// removes its state file and releases the lock.
	stopMargin = 10 * time.Second
	// readyMargin is added to patchd's own start timeout to bound how long
	// a supervisor waits for the ready message.
	readyMargin = 5 * time.Second
)

// Spec is what the definitions need. Only Exe and Workspace are required.
type Spec struct {
	// Name names the service (PM2 app, systemd units, launchd label);
	// DefaultName when empty. Letters, digits, '.', '_' and '-' (not "--").
	Name string
	// Exe is the absolute path of the patchd binary.
	Exe string
	// Args are the flags passed after `patchd run`, already resolved, such
	// as ["--workspace", "/srv/ws", "--port", "5555"]; without "run".
	// --host and --port (or PATCHD_HOST and PATCHD_PORT in Env) give the
	// systemd socket's address.
	Args []string
	// Workspace is the service's working directory (absolute). patchd's
	// default workspace is the working directory, so Args need not repeat it.
	Workspace string
	// StateDir is patchd's state directory, where launchd's logs go;
	// --state-dir from Args, or <Workspace>/.patchd, when empty. A relative
	// path is taken from Workspace, as patchd would.
	StateDir string
	// DrainTimeout is how long patchd drains requests when stopped; zero
	// means --drain-timeout from Args, or patchd's default of 10s. The longer
	// of the two is used when both are given, since a supervisor that waits
	// too long costs only time, and one that waits too little cuts requests.
	DrainTimeout time.Duration
	// User, when set, makes the systemd units and the launchd plist
	// system-wide definitions that run patchd as this user (User=,
	// UserName). PM2 runs apps as whoever runs PM2 and ignores it.
	User string
	// Env is extra environment for patchd, typically PATCHD_* settings.
	Env map[string]string
	// Path is the PATH patchd runs with, and so the one its checks find
	// their toolchain with; empty leaves the supervisor's, which is short
	// (launchd's is /usr/bin:/bin:/usr/sbin:/sbin, where every `go` check
	// failed with "go: not found"). Env must not hold PATH as well. Its
	// entries must be absolute: a relative one would find the programs
	// a patch wrote into the workspace.
	Path string
}

// envVar is one entry of Spec.Env.
type envVar struct{ key, value string }

// plan is a validated Spec with every default filled in and the settings the
// definitions need read out of Args and Env.
type plan struct {
	name, exe, workspace, stateDir, user string
	path                                 string // Spec.Path, also in env
	args                                 []string
	env                                  []envVar // sorted by key
	host                                 string   // as patchd will read it
	port                                 int
	ifRunning                            string
	drain                                time.Duration
	stop                                 time.Duration // how long a supervisor waits after SIGTERM
	ready                                time.Duration // how long a supervisor waits for readiness
	// writable lists, workspace first, the directories patchd writes,
	// none inside another.
	writable []string
}

// resolve validates s and fills in the defaults.
func resolve(s Spec) (*plan, error) {
	p := &plan{name: s.Name, exe: s.Exe, user: s.User, args: slices.Clone(s.Args)}
	if p.name == "" {
		p.name = DefaultName
	}
	if err := checkName(p.name); err != nil {
		return nil, err
	}
	if err := checkText("exe", s.Exe); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(s.Exe) {
		return nil, fmt.Errorf("exe %q: not an absolute path (a supervisor starts it without a shell or PATH)", s.Exe)
	}
	if err := checkText("workspace", s.Workspace); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(s.Workspace) {
		return nil, fmt.Errorf("workspace %q: not an absolute path", s.Workspace)
	}
	p.workspace = filepath.Clean(s.Workspace)
	if err := checkUser(s.User); err != nil {
		return nil, err
	}
	for i, a := range s.Args {
		if err := checkText(fmt.Sprintf("args[%d]", i), a); err != nil {
			return nil, err
		}
	}
	env := make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		if err := checkEnv(k, v); err != nil {
			return nil, err
		}
		env[k] = v
		p.env = append(p.env, envVar{k, v})
	}
	if s.Path != "" {
		if _, ok := env["PATH"]; ok {
			return nil, fmt.Errorf("env PATH: give the PATH once, as the path, not in env too")
		}
		if err := checkPath(s.Path); err != nil {
			return nil, err
		}
		p.env = append(p.env, envVar{"PATH", s.Path})
		p.path = s.Path
	}
	slices.SortFunc(p.env, func(a, b envVar) int { return strings.Compare(a.key, b.key) })
	if s.DrainTimeout < 0 {
		return nil, fmt.Errorf("drain timeout %s: negative", s.DrainTimeout)
	}

	flags, err := scanFlags(s.Args)
	if err != nil {
		return nil, err
	}
	// What patchd will read for a setting: the flag, else PATCHD_<NAME>
	// (config ignores an empty variable, and so do we).
	setting := func(name string) (string, bool) {
		if v, ok := flags[name]; ok {
			return v, true
		}
		v := env["PATCHD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]
		return v, v != ""
	}
	path := func(v string) string {
		if filepath.IsAbs(v) {
			return filepath.Clean(v)
		}
		return filepath.Join(p.workspace, v)
	}

	p.host = defaultHost
	if v, ok := setting("host"); ok {
		p.host = v
	}
	p.port = defaultPort
	if v, ok := setting("port"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("--port %q: not a port number", v)
		}
		p.port = n
	}
	p.ifRunning = "standby"
	if v, ok := setting("if-running"); ok {
		p.ifRunning = v
	}

	p.drain = s.DrainTimeout
	if v, ok := setting("drain-timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--drain-timeout %q: not a positive duration", v)
		}
		p.drain = max(p.drain, d)
	}
	if p.drain == 0 {
		p.drain = defaultDrain
	}
	p.stop = p.drain + stopMargin
	start := defaultStartTimeout
	if v, ok := setting("start-timeout"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--start-timeout %q: not a positive duration", v)
		}
		start = d
	}
	p.ready = start + readyMargin

	stateFromArgs, hasStateArg := setting("state-dir")
	switch {
	case s.StateDir != "":
		if err := checkText("state dir", s.StateDir); err != nil {
			return nil, err
		}
		p.stateDir = path(s.StateDir)
	case hasStateArg:
		p.stateDir = path(stateFromArgs)
	default:
		p.stateDir = filepath.Join(p.workspace, ".patchd")
	}

	// Directories patchd writes to, for sandboxes that make the rest of
	// the file system read-only.
	dirs := []string{p.workspace, p.stateDir}
	if hasStateArg {
		dirs = append(dirs, path(stateFromArgs))
	}
	if v, ok := setting("summaries-dir"); ok {
		dirs = append(dirs, path(v))
	}
	if v, ok := setting("pid-file"); ok {
		// The PID file is replaced by a rename, which needs its directory.
		dirs = append(dirs, filepath.Dir(path(v)))
	}
	for _, d := range dirs {
		if !slices.ContainsFunc(p.writable, func(w string) bool { return within(w, d) }) {
			p.writable = append(p.writable, d)
		}
	}
	return p, nil
}

// scanFlags returns the last value given to each flag in args, read the way
// Go's flag package reads them: -name or --name, a value after '=' or in the
// next argument, and an end at "--" or at the first argument that is not a
// flag.
func scanFlags(args []string) (map[string]string, error) {
	flags := make(map[string]string)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if !hasValue && !isBoolFlag(name) {
			if i+1 == len(args) {
				return nil, fmt.Errorf("args: flag %s has no value", a)
			}
			i++
			value = args[i]
		}
		flags[name] = value
	}
	return flags, nil
}

// isBoolFlag reports whether the flag of `patchd run` stands alone; every
// other flag takes a value. A test keeps this in step with internal/config.
func isBoolFlag(name string) bool {
	switch name {
	case "no-auth", "git", "allow-root-workspace", "check-sandbox", "trust-proxy", "metrics-public", "h", "help":
		return true
	}
	return false
}

// within reports whether path p is dir or lies under it (both clean).
func within(dir, p string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// checkText refuses what none of the formats can carry faithfully: invalid
// UTF-8 (JSON and XML would silently replace it) and control characters (a
// newline ends a unit-file line and XML 1.0 forbids most of the others).
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: not valid UTF-8", field, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: contains a control character", field, s)
		}
	}
	return nil
}

// checkName keeps names usable as a systemd unit name, a launchd label and a
// file name alike.
func checkName(name string) error {
	// "--" and a final '-' are out because the name appears in the launchd
	// plist's XML comment, which may contain neither.
	ok := len(name) <= 100 && !strings.Contains(name, "--") && !strings.HasSuffix(name, "-")
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '.' || r == '_' || r == '-') && i > 0:
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("name %q: use up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit, with no \"--\" and no final '-'", name)
	}
	return nil
}

// checkUser accepts POSIX-style user names and numeric ids.
func checkUser(user string) error {
	for i, r := range user {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
		case (r == '.' || r == '-') && i > 0:
		case r == '$' && i == len(user)-1 && i > 0:
		default:
			return fmt.Errorf("user %q: not a user name", user)
		}
	}
	return nil
}

// checkEnv refuses names a supervisor cannot set and the variables of the
// protocols between patchd and its supervisor or its own parent, which a
// stray value would corrupt.
func checkEnv(key, value string) error {
	valid := key != ""
	for i, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			valid = false
		}
	}
	if !valid {
		return fmt.Errorf("env %q: not a variable name (letters, digits and '_', not starting with a digit)", key)
	}
	switch key {
	case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "NODE_CHANNEL_FD":
		return fmt.Errorf("env %s: set by the supervisor itself, not by a definition", key)
	}
	if strings.HasPrefix(key, "PATCHD_INTERNAL_") {
		return fmt.Errorf("env %s: internal to patchd start, not a setting", key)
	}
	return checkText("env "+key, value)
}

// checkPath refuses a PATH a definition cannot carry or that would let a
// check run a program from the workspace by its bare name.
func checkPath(path string) error {
	if err := checkText("path", path); err != nil {
		return err
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("path %q: entry %q is not absolute: a check would run programs found there, in the workspace a patch writes", path, dir)
		}
	}
	return nil
}

// seconds rounds d up to whole seconds, the unit systemd and launchd are
// given here, so that a wait is never shortened.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// millis rounds d up to whole milliseconds, PM2's unit.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// shellQuote quotes s for a POSIX shell, for the commands shown in comments.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
