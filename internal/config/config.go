// Package config holds patchd's settings: each one defined once with its
// default, read from an optional JSON config file, then PATCHD_* environment
// variables, then command-line flags (flags win).
//
// Every subcommand registers the same common settings on its own FlagSet, so
// a script can pass one set of flags to start, stop, status and send alike.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/checkspec"
)

// DefaultLogMaxSizeMB is --log-max-size's default: the log and
// events.jsonl rotate at this many MiB.
const DefaultLogMaxSizeMB = 10

// Config is the resolved configuration of one patchd instance.
type Config struct {
	Workspace     string        // absolute workspace root
	StateDir      string        // absolute state directory
	Host          string        // address to listen on
	Port          int           // preferred port; 0 = any free port
	FallbackPorts []int         // tried in order when Port is busy
	LogLevel      string        // debug, info, warn, error
	IfRunning     string        // standby or exit, when another instance holds the lock
	PIDFile       string        // optional plain PID file for old watchdogs
	ConfigFile    string        // the config file read, "" if none
	LogMaxSizeMB  int           // log rotation threshold
	StartTimeout  time.Duration // how long `start` waits for readiness
	DrainTimeout  time.Duration // how long shutdown waits for requests in flight

	NoAuth       bool    // serve the webhook without a token (loopback only)
	MaxBodyBytes int64   // webhook body limit
	SummariesDir string  // where patch summaries go
	RateLimit    float64 // webhook requests per second (0 = unlimited)
	RateBurst    int     // webhook burst size
	Git          bool    // commit every applied patch
	CheckSandbox bool    // confine every check (see Check.Sandbox)

	// AllowedHosts are Host header names answered besides this machine's
	// (see internal/server's Guard); AllowedOrigins, browser origins.
	AllowedHosts   []string
	AllowedOrigins []string
	// PublicURL is where clients reach patchd (--public-url), "" if not
	// set; HealthDetail is who sees /health's details: token or public.
	PublicURL    string
	HealthDetail string
	// TrustProxy believes the forwarding headers a reverse proxy sets
	// (--trust-proxy; see internal/server's Options.TrustProxy).
	TrustProxy bool
	// MetricsPublic serves GET /metrics without the token
	// (--metrics-public).
	MetricsPublic bool
	// MaxConns and MaxConnsPerClient cap the HTTP connections open at
	// once, in all and per client address; 0 = derived from the file
	// limit (see internal/daemon).
	MaxConns          int
	MaxConnsPerClient int

	// AllowRootWorkspace lets the workspace be the file system's root.
	AllowRootWorkspace bool

	// Limits on one patch; each fails only the patch that passes it.
	MaxFileBytes    int64         // largest file a patch reads or writes
	MaxPatchContent int64         // most file content one patch holds (read and written)
	PlanTimeout     time.Duration // longest a patch's planning may take
	MaxEdits        int           // most elements of a block's "edits"

	// Retain is the retention policy (--retain).
	Retain Retain

	// Notify are the notification receivers (--notify).
	Notify []Notify

	// Queue is the NATS JetStream a runner takes patches from (--queue).
	Queue Queue

	// Checks run after a patch is written; only the config file defines
	// them, never a payload or a flag.
	Checks []Check
}

// Check is a command run in the workspace after a patch is written (see
// checkspec.Check, where it is defined so that the worker need not import
// config).
type Check = checkspec.Check

// Paths of the files in the state directory.

// LockPath is the flock target; it is never deleted.
func (c *Config) LockPath() string { return filepath.Join(c.StateDir, "patchd.lock") }

// StatePath is the state file written once the port is bound.
func (c *Config) StatePath() string { return filepath.Join(c.StateDir, "patchd.json") }

// ControlPath is the control socket.
func (c *Config) ControlPath() string { return filepath.Join(c.StateDir, "patchd.sock") }

// StopPath is the stop marker, rewritten by each `patchd stop`: a standby
// that finds it changed when it wins the lock stands down instead.
func (c *Config) StopPath() string { return filepath.Join(c.StateDir, "patchd.stop") }

// TokenPath holds the webhook bearer token.
func (c *Config) TokenPath() string { return filepath.Join(c.StateDir, "token") }

// LogPath is the daemon's rotated JSON log.
func (c *Config) LogPath() string { return filepath.Join(c.StateDir, "logs", "patchd.log") }

// QueueDir holds the durable patch store.
func (c *Config) QueueDir() string { return filepath.Join(c.StateDir, "queue") }

// EventsPath is the append-only event log.
func (c *Config) EventsPath() string { return filepath.Join(c.StateDir, "events.jsonl") }

// EventsMaxBytes is the size at which the event log is rotated: the log
// file's (--log-max-size).
func (c *Config) EventsMaxBytes() int64 { return int64(c.LogMaxSizeMB) << 20 }

// Ports returns the port and the fallbacks, in the order to try them.
func (c *Config) Ports() []int {
	ports := []int{c.Port}
	for _, p := range c.FallbackPorts {
		if !slices.Contains(ports, p) || p == 0 {
			ports = append(ports, p)
		}
	}
	return ports
}

// Names of the settings the daemon quotes in messages (a patch that passes
// a limit is told which setting raises it).
const (
	SettingMaxFileSize     = "max-file-size"
	SettingMaxPatchContent = "max-patch-content"
	SettingPlanTimeout     = "plan-timeout"
	SettingMaxEdits        = "max-edits"
)

// setting is one configurable value: its flag name (also the config-file key
// and, upper-cased, the PATCHD_ environment variable), default and parser.
type setting struct {
	name   string
	def    string
	usage  string
	repeat bool // flag may be repeated; env and file values are comma lists
	apply  func(c *Config, vals []string) error
	// format renders the setting's value in a Config as apply reads it,
	// for Args: the configuration written back as flags.
	format func(c *Config) []string
	// notArgs, when not "", says why Args leaves the setting out, and so
	// why no service definition carries it: a setting only the client
	// reads, or a secret, which the daemon must find in its own place.
	// Today only --notify is left out: its URLs and keys are secrets.
	notArgs string
	// pin makes Args write the setting even at its default: service
	// definitions are built around its value (the systemd socket's
	// address, the supervisor's waits), which a later config file must
	// not change under them.
	pin bool
}

// settings is the single definition of every common setting and its default.
func settings() []setting {
	return append(append(append(append(baseSettings(), httpSettings()...), retainSettings()...), notifySettings()...), queueSettings()...)
}

func baseSettings() []setting {
	return []setting{
		{name: "workspace", format: text(func(c *Config) string { return c.Workspace }), def: "", usage: "workspace root (default: current directory)", apply: func(c *Config, v []string) error {
			c.Workspace = last(v)
			return nil
		}},
		{name: "allow-root-workspace", format: boolean(func(c *Config) bool { return c.AllowRootWorkspace }), def: "false", usage: "let the workspace be the root of the file system (/), where patches could write anywhere", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.AllowRootWorkspace = b
			return nil
		}},
		{name: "state-dir", format: text(func(c *Config) string { return c.StateDir }), def: "", usage: "state directory (default: <workspace>/.patchd)", apply: func(c *Config, v []string) error {
			c.StateDir = last(v)
			return nil
		}},
		{name: "host", pin: true, format: text(func(c *Config) string { return c.Host }), def: "127.0.0.1", usage: "address to listen on", apply: func(c *Config, v []string) error {
			c.Host = last(v)
			return nil
		}},
		{name: "port", pin: true, format: integer(func(c *Config) int { return c.Port }), def: "5555", usage: "port to listen on (0 = any free port)", apply: func(c *Config, v []string) error {
			p, err := parsePort(last(v))
			c.Port = p
			return err
		}},
		{name: "fallback-port", format: formatPorts, def: "5566", repeat: true, usage: "port to try when the port is busy (repeatable; \"none\" for no fallback)", apply: func(c *Config, v []string) error {
			c.FallbackPorts = nil
			for _, s := range v {
				if s == "none" || s == "" {
					continue
				}
				p, err := parsePort(s)
				if err != nil {
					return err
				}
				c.FallbackPorts = append(c.FallbackPorts, p)
			}
			return nil
		}},
		{name: "log-level", format: text(func(c *Config) string { return c.LogLevel }), def: "info", usage: "log level: debug, info, warn, error", apply: func(c *Config, v []string) error {
			c.LogLevel = strings.ToLower(last(v))
			switch c.LogLevel {
			case "debug", "info", "warn", "error":
				return nil
			}
			return fmt.Errorf("must be one of debug, info, warn, error, not %q", last(v))
		}},
		{name: "if-running", format: text(func(c *Config) string { return c.IfRunning }), def: "standby", usage: "when another instance runs: standby (wait and take over) or exit (code 5)", apply: func(c *Config, v []string) error {
			c.IfRunning = last(v)
			if c.IfRunning != "standby" && c.IfRunning != "exit" {
				return fmt.Errorf("must be standby or exit, not %q", c.IfRunning)
			}
			return nil
		}},
		{name: "pid-file", format: text(func(c *Config) string { return c.PIDFile }), def: "", usage: "also write a plain PID file here, for old watchdogs", apply: func(c *Config, v []string) error {
			c.PIDFile = last(v)
			return nil
		}},
		{name: "log-max-size", format: integer(func(c *Config) int { return c.LogMaxSizeMB }), def: strconv.Itoa(DefaultLogMaxSizeMB), usage: "rotate the log file and events.jsonl at this many MiB", apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(last(v))
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive number of MiB, not %q", last(v))
			}
			c.LogMaxSizeMB = n
			return nil
		}},
		{name: "start-timeout", pin: true, format: duration(func(c *Config) time.Duration { return c.StartTimeout }), def: "15s", usage: "how long start waits for the daemon to be ready", apply: func(c *Config, v []string) error {
			d, err := parseDuration(last(v))
			c.StartTimeout = d
			return err
		}},
		{name: "drain-timeout", pin: true, format: duration(func(c *Config) time.Duration { return c.DrainTimeout }), def: "10s", usage: "how long a stop waits for requests in flight", apply: func(c *Config, v []string) error {
			d, err := parseDuration(last(v))
			c.DrainTimeout = d
			return err
		}},
		{name: "no-auth", format: boolean(func(c *Config) bool { return c.NoAuth }), def: "false", usage: "serve the webhook without a token (refused unless the host is loopback)", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.NoAuth = b
			return nil
		}},
		{name: "max-body", format: integer(func(c *Config) int64 { return c.MaxBodyBytes }), def: "1048576", usage: "largest webhook body in bytes", apply: func(c *Config, v []string) error {
			n, err := strconv.ParseInt(last(v), 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive number of bytes, not %q", last(v))
			}
			c.MaxBodyBytes = n
			return nil
		}},
		{name: "summaries-dir", format: formatSummaries, def: "", usage: "where patch summaries are written (default: <state-dir>/summaries)", apply: func(c *Config, v []string) error {
			c.SummariesDir = last(v)
			return nil
		}},
		{name: "rate-limit", format: text(func(c *Config) string { return strconv.FormatFloat(c.RateLimit, 'f', -1, 64) }), def: "0", usage: "webhook requests per second before 429 (0 = unlimited)", apply: func(c *Config, v []string) error {
			f, err := strconv.ParseFloat(last(v), 64)
			if err != nil || f < 0 {
				return fmt.Errorf("must be a non-negative number, not %q", last(v))
			}
			c.RateLimit = f
			return nil
		}},
		{name: "git", format: boolean(func(c *Config) bool { return c.Git }), def: "false", usage: "commit every applied patch to the workspace's git repository (and revert commits)", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.Git = b
			return nil
		}},
		{name: "check-sandbox", format: boolean(func(c *Config) bool { return c.CheckSandbox }), def: "false", usage: "confine every check: on Linux (Landlock ABI 4+) writes only to the workspace and its temporary directory, no TCP, no capabilities", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.CheckSandbox = b
			return nil
		}},
		{name: SettingMaxFileSize, format: size(func(c *Config) int64 { return c.MaxFileBytes }), def: "64MiB", usage: "largest file a patch may read or write; a patch past it fails", apply: func(c *Config, v []string) error {
			n, err := parseSize(last(v))
			c.MaxFileBytes = n
			return err
		}},
		{name: SettingMaxPatchContent, format: size(func(c *Config) int64 { return c.MaxPatchContent }), def: "256MiB", usage: "most file content one patch may hold in memory, every file it reads plus every file it writes; a patch past it fails", apply: func(c *Config, v []string) error {
			n, err := parseSize(last(v))
			c.MaxPatchContent = n
			return err
		}},
		{name: SettingMaxEdits, format: integer(func(c *Config) int { return c.MaxEdits }), def: "1000", usage: "most edits one patch block may hold; a block with more is refused (400)", apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(last(v))
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive number, not %q", last(v))
			}
			c.MaxEdits = n
			return nil
		}},
		{name: SettingPlanTimeout, format: duration(func(c *Config) time.Duration { return c.PlanTimeout }), def: "10s", usage: "longest the planning of one patch (reading its files, computing its edits) may take; a patch past it fails", apply: func(c *Config, v []string) error {
			d, err := parseDuration(last(v))
			c.PlanTimeout = d
			return err
		}},
		{name: "rate-burst", format: integer(func(c *Config) int { return c.RateBurst }), def: "100", usage: "webhook burst size for --rate-limit", apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(last(v))
			if err != nil || n < 1 {
				return fmt.Errorf("must be a positive number, not %q", last(v))
			}
			c.RateBurst = n
			return nil
		}},
	}
}

// Flags holds the common settings registered on one FlagSet.
type Flags struct {
	values     map[string]*flagValue
	configFile string
}

// flagValue records what a flag was given, without interpreting it yet:
// precedence is decided in Load, after every layer is known.
type flagValue struct {
	s    setting
	vals []string
}

func (v *flagValue) String() string { return strings.Join(v.vals, ",") }

func (v *flagValue) Set(s string) error {
	if v.s.repeat {
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

// IsBoolFlag lets `--no-auth` stand alone.
func (v *flagValue) IsBoolFlag() bool { return v.s.def == "false" }

// Register adds the common settings and --config to fs.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{values: map[string]*flagValue{}}
	for _, s := range settings() {
		v := &flagValue{s: s}
		f.values[s.name] = v
		usage := s.usage
		if s.def != "" && s.def != "false" {
			usage += " (default " + s.def + ")"
		}
		fs.Var(v, s.name, usage+"; env PATCHD_"+envName(s.name))
	}
	fs.StringVar(&f.configFile, "config", "", "JSON config file (default: <state-dir>/config.json if it exists); env PATCHD_CONFIG")
	return f
}

// Load resolves the configuration after fs.Parse: defaults, then the config
// file, then the environment (looked up with getenv), then the flags given.
func (f *Flags) Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	layers := map[string][]string{}
	for _, s := range settings() {
		layers[s.name] = splitList(s, s.def)
	}
	env := map[string][]string{}
	for _, s := range settings() {
		if v := getenv("PATCHD_" + envName(s.name)); v != "" {
			env[s.name] = splitList(s, v)
		}
	}
	flags := map[string][]string{}
	for name, v := range f.values {
		if v.vals != nil {
			flags[name] = v.vals
		}
	}

	// The config file's default location depends on the state dir, which
	// only the env and flags may set (a file cannot say where it is).
	pick := func(name string) string {
		if v, ok := flags[name]; ok {
			return last(v)
		}
		if v, ok := env[name]; ok {
			return last(v)
		}
		return last(layers[name])
	}
	cfgPath, explicit := f.configFile, true
	if cfgPath == "" {
		cfgPath = getenv("PATCHD_CONFIG")
	}
	if cfgPath == "" {
		explicit = false
		ws, err := absDir(pick("workspace"))
		if err != nil {
			return nil, err
		}
		sd := pick("state-dir")
		if sd == "" {
			sd = filepath.Join(ws, ".patchd")
		}
		cfgPath = filepath.Join(sd, "config.json")
	}
	// Named absolute: Args passes it to a daemon started elsewhere.
	if abs, err := filepath.Abs(cfgPath); err == nil {
		cfgPath = abs
	}
	fileVals, fileData, err := readFile(cfgPath, explicit)
	if err != nil {
		return nil, err
	}
	for name, v := range fileVals {
		layers[name] = v
	}
	for name, v := range env {
		layers[name] = v
	}
	for name, v := range flags {
		layers[name] = v
	}

	c := &Config{}
	if fileVals != nil {
		c.ConfigFile = cfgPath
		if c.Checks, err = readChecks(cfgPath, fileData); err != nil {
			return nil, err
		}
	}
	for _, s := range settings() {
		if err := s.apply(c, layers[s.name]); err != nil {
			return nil, fmt.Errorf("--%s: %w", s.name, err)
		}
	}
	for i := range c.Checks {
		c.Checks[i].Sandbox = c.Checks[i].Sandbox || c.CheckSandbox
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// finish makes paths absolute, fills path defaults and checks combinations.
func (c *Config) finish() error {
	ws, err := absDir(c.Workspace)
	if err != nil {
		return err
	}
	c.Workspace = ws
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.Workspace, ".patchd")
	}
	if c.StateDir, err = filepath.Abs(c.StateDir); err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	if c.SummariesDir == "" {
		c.SummariesDir = filepath.Join(c.StateDir, "summaries")
	}
	if c.SummariesDir, err = filepath.Abs(c.SummariesDir); err != nil {
		return fmt.Errorf("--summaries-dir: %w", err)
	}
	if c.PIDFile != "" {
		if c.PIDFile, err = filepath.Abs(c.PIDFile); err != nil {
			return fmt.Errorf("--pid-file: %w", err)
		}
	}
	if err := c.checkRootWorkspace(); err != nil {
		return err
	}
	if err := c.checkStateDir(); err != nil {
		return err
	}
	if c.Host == "" {
		return errors.New("--host: must not be empty")
	}
	if err := c.checkQueue(); err != nil {
		return err
	}
	if c.NoAuth && !IsLoopback(c.Host) {
		return fmt.Errorf("--no-auth is refused with --host %s: without a token only a loopback host is allowed", c.Host)
	}
	return nil
}

// IsLoopback reports whether host only accepts connections from this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readFile reads a JSON object whose keys are setting names, and returns
// the file's bytes for the sections read elsewhere (checks). A missing file
// is an error only when it was named explicitly.
func readFile(path string, explicit bool) (map[string][]string, []byte, error) {
	data, err := readPrivate(path, explicit)
	if err != nil || data == nil {
		return nil, nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]setting{}
	for _, s := range settings() {
		known[s.name] = s
	}
	out := map[string][]string{}
	for key, v := range raw {
		if key == "checks" || key == "check-env" || key == "check-pass-env" {
			continue // read by readChecks
		}
		s, ok := known[key]
		if !ok {
			return nil, nil, fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		fileValue := fileValue
		if key == SettingNotify {
			fileValue = notifyFileValue
		}
		vals, err := fileValue(v)
		if err != nil {
			return nil, nil, fmt.Errorf("config file %s: %s: %w", path, key, err)
		}
		if !s.repeat && len(vals) != 1 {
			return nil, nil, fmt.Errorf("config file %s: %s: takes one value", path, key)
		}
		out[key] = vals
	}
	return out, data, nil
}

func fileValue(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := fileValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		if out == nil {
			out = []string{"none"}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value %v", v)
}

func envName(flagName string) string {
	return strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func splitList(s setting, v string) []string {
	if !s.repeat {
		return []string{v}
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("must be a port number from 0 to 65535, not %q", s)
	}
	return p, nil
}

// parseSize reads a positive number of bytes, optionally with a binary
// unit: "1048576", "512KiB", "64MiB", "1GiB" (K, M, G and KB, MB, GB are
// read the same way).
func parseSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(num)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return 0, fmt.Errorf("must be a positive size like 64MiB or 1048576, not %q", s)
	}
	return n * mult, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive duration like 10s, not %q", s)
	}
	return d, nil
}

func absDir(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--workspace: %w", err)
	}
	return abs, nil
}

// readChecks reads the "checks" section of the config file:
//
//	"checks": [{"name": "build", "command": "go build ./...", "timeout": "2m", "paths": ["*.go"]}]
//
// A string command runs with sh -c; an array is the argv itself.
func readChecks(path string, data []byte) ([]Check, error) {
	var file struct {
		Checks []struct {
			Name     string            `json:"name"`
			Command  json.RawMessage   `json:"command"`
			Timeout  string            `json:"timeout"`
			Paths    []string          `json:"paths"`
			Env      map[string]string `json:"env"`
			PassEnv  []string          `json:"pass_env"`
			Sandbox  bool              `json:"sandbox"`
			Writable []string          `json:"writable"`
		} `json:"checks"`
		Env     map[string]string `json:"check-env"`
		PassEnv []string          `json:"check-pass-env"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("config file %s: checks: %w", path, err)
	}
	if err := checkEnvSpec("check-env", "check-pass-env", file.Env, file.PassEnv); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var checks []Check
	for i, raw := range file.Checks {
		where := fmt.Sprintf("config file %s: checks[%d]", path, i)
		c := Check{Name: raw.Name, Paths: raw.Paths, Timeout: 2 * time.Minute}
		var line string
		if json.Unmarshal(raw.Command, &line) == nil {
			if strings.TrimSpace(line) == "" {
				return nil, fmt.Errorf("%s: command is empty", where)
			}
			c.Command = []string{"sh", "-c", line}
		} else if json.Unmarshal(raw.Command, &c.Command) != nil || len(c.Command) == 0 || c.Command[0] == "" {
			return nil, fmt.Errorf("%s: command must be a string or a non-empty array of strings", where)
		}
		if c.Name == "" {
			c.Name = strings.Join(c.Command, " ")
			if len(c.Command) == 3 && c.Command[0] == "sh" {
				c.Name = c.Command[2]
			}
		}
		if raw.Timeout != "" {
			d, err := parseDuration(raw.Timeout)
			if err != nil {
				return nil, fmt.Errorf("%s: timeout: %w", where, err)
			}
			c.Timeout = d
		}
		for _, g := range c.Paths {
			if _, err := filepath.Match(g, "x"); err != nil {
				return nil, fmt.Errorf("%s: paths: bad glob %q", where, g)
			}
		}
		if err := checkEnvSpec("env", "pass_env", raw.Env, raw.PassEnv); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c.Env, c.PassEnv = mergeEnv(file.Env, raw.Env), mergeNames(file.PassEnv, raw.PassEnv)
		c.Sandbox = raw.Sandbox
		for _, d := range raw.Writable {
			if !filepath.IsAbs(d) {
				return nil, fmt.Errorf("%s: writable: %q is not an absolute path", where, d)
			}
			c.Writable = append(c.Writable, filepath.Clean(d))
		}
		checks = append(checks, c)
	}
	return checks, nil
}
