package service

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is a Spec whose rendered definitions are pinned in
// testdata/<name>.<kind>.golden. The paths are fixed, never this machine's.
type goldenCase struct {
	name string
	spec Spec
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "defaults",
			spec: Spec{Exe: "/opt/patchd/bin/patchd", Workspace: "/home/dev/ws"},
		},
		{
			// Spaces, quotes, '%', '$' and a backslash wherever a value can
			// hold them; a system-wide definition with its own environment.
			name: "quoting",
			spec: Spec{
				Name:      "patchd-dev",
				Exe:       "/opt/patch d/bin/patchd",
				Workspace: "/home/dev/my project",
				StateDir:  `/var/lib/patchd "state" 100%`,
				Args: []string{
					"--port", "6000", "--host", "0.0.0.0",
					"--pid-file", "/run/patchd/$USER.pid",
					"--summaries-dir", `notes\50% it's`,
					"--no-auth", "--log-level=debug", ";",
				},
				DrainTimeout: 30 * time.Second,
				User:         "dev",
				Env: map[string]string{
					"PATCHD_LOG_LEVEL": "debug",
					"GREETING":         `say "hi" 100% $HOME \ ok <&>`,
				},
			},
		},
		{
			// IPv6 loopback, --if-running=exit, the state dir and drain time
			// from the environment and flags, a workspace under /tmp.
			name: "exit-ipv6",
			spec: Spec{
				Name:      "ws2",
				Exe:       "/usr/local/bin/patchd",
				Workspace: "/tmp/ws2",
				Args:      []string{"-host=::1", "-port", "7000", "--if-running=exit", "--drain-timeout", "45s", "--start-timeout=30s"},
				Env:       map[string]string{"PATCHD_STATE_DIR": "state"},
			},
		},
		{
			// The PATH where the definition was generated, so that checks
			// find the toolchain; and settings for the checks' tools.
			name: "toolchain",
			spec: Spec{
				Exe:       "/home/dev/go/bin/patchd",
				Workspace: "/home/dev/ws",
				Path:      "/home/dev/go/bin:/usr/local/go/bin:/opt/homebrew/bin:/usr/bin:/bin",
				Env:       map[string]string{"GOFLAGS": "-mod=mod", "PATCHD_LOG_LEVEL": "debug"},
			},
		},
		{
			// Settings given to `patchd service`, passed on as it passes
			// them: the flags config.Args renders from the settings table.
			name: "settings",
			spec: Spec{
				Exe:       "/opt/patchd/bin/patchd",
				Workspace: "/home/dev/ws",
				Args: configArgs("--workspace", "/home/dev/ws", "--log-max-size", "50", "--start-timeout", "60s",
					"--max-conns", "100", "--allowed-host", "patchd.example.com", "--public-url", "https://patchd.example.com",
					"--check-sandbox", "--max-file-size", "8MiB", "--plan-timeout", "30s", "--git"),
			},
		},
	}
}

// configArgs is what `patchd service` passes to `patchd run` for these
// flags: config.Args of the configuration they make.
func configArgs(flags ...string) []string {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	f := config.Register(fs)
	if err := fs.Parse(flags); err != nil {
		panic(err)
	}
	c, err := f.Load(func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	return c.Args()
}

// TestSettingsReachDefinitions: settings of `patchd service` reach `patchd
// run` in every definition (--log-max-size and --start-timeout were lost),
// and PM2's listen_timeout is --start-timeout and its margin (issue 11).
func TestSettingsReachDefinitions(t *testing.T) {
	i := slices.IndexFunc(goldenCases(), func(c goldenCase) bool { return c.name == "settings" })
	got := render(t, goldenCases()[i].spec)
	for kind, sep := range map[string][2]string{
		"service": {" ", " "}, "pm2": {`"`, `", "`}, "plist": {"<string>", "</string>\n\t\t<string>"},
	} {
		for _, w := range []string{"--log-max-size 50", "--start-timeout 60s", "--max-conns 100", "--plan-timeout 30s", "--max-file-size 8MiB", "--check-sandbox", "--git"} {
			if q := sep[0] + strings.ReplaceAll(w, " ", sep[1]); !strings.Contains(got[kind], q) {
				t.Errorf("%s: want %q in it:\n%s", kind, q, got[kind])
			}
		}
	}
	if want := "listen_timeout: 65000,"; !strings.Contains(got["pm2"], want) {
		t.Errorf("pm2 with --start-timeout 60s: want %q:\n%s", want, got["pm2"])
	}
}

// specEnv is the environment a definition of spec sets: Env, and PATH.
func specEnv(spec Spec) map[string]string {
	env := maps.Clone(spec.Env)
	if spec.Path != "" {
		if env == nil {
			env = map[string]string{}
		}
		env["PATH"] = spec.Path
	}
	return env
}

// render returns every file the generators make for spec, by golden kind.
func render(t *testing.T, spec Spec) map[string]string {
	t.Helper()
	pm2, err := PM2(spec)
	if err != nil {
		t.Fatalf("PM2: %v", err)
	}
	svc, sock, err := Systemd(spec)
	if err != nil {
		t.Fatalf("Systemd: %v", err)
	}
	plist, err := Launchd(spec)
	if err != nil {
		t.Fatalf("Launchd: %v", err)
	}
	return map[string]string{"pm2": pm2, "service": svc, "socket": sock, "plist": plist}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		for kind, got := range render(t, tc.spec) {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				path := filepath.Join("testdata", tc.name+"."+kind+".golden")
				if *update {
					if err := os.MkdirAll("testdata", 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", kind, path, got, want)
				}
			})
		}
	}
}

// TestDeterministic guards the golden files against map order: Env is a map.
func TestDeterministic(t *testing.T) {
	for _, tc := range goldenCases() {
		first := render(t, tc.spec)
		for range 20 {
			for kind, got := range render(t, tc.spec) {
				if got != first[kind] {
					t.Fatalf("%s/%s: output changed between two renderings", tc.name, kind)
				}
			}
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name         string
		spec         Spec
		wantHost     string
		wantPort     int
		wantDrain    time.Duration
		wantStop     time.Duration
		wantReady    time.Duration
		wantStateDir string
		wantWritable []string
	}{
		{
			name:         "defaults",
			spec:         Spec{Exe: "/bin/patchd", Workspace: "/w"},
			wantHost:     "127.0.0.1",
			wantPort:     5555,
			wantDrain:    10 * time.Second,
			wantStop:     20 * time.Second,
			wantReady:    20 * time.Second,
			wantStateDir: "/w/.patchd",
			wantWritable: []string{"/w"},
		},
		{
			name: "flags win over env",
			spec: Spec{Exe: "/bin/patchd", Workspace: "/w", Args: []string{"--port=6000", "--host", "::1"},
				Env: map[string]string{"PATCHD_PORT": "7000", "PATCHD_HOST": "10.0.0.1"}},
			wantHost: "::1", wantPort: 6000,
			wantDrain: 10 * time.Second, wantStop: 20 * time.Second, wantReady: 20 * time.Second,
			wantStateDir: "/w/.patchd", wantWritable: []string{"/w"},
		},
		{
			name: "env when no flag; empty env ignored",
			spec: Spec{Exe: "/bin/patchd", Workspace: "/w",
				Env: map[string]string{"PATCHD_PORT": "7000", "PATCHD_HOST": "", "PATCHD_DRAIN_TIMEOUT": "1m"}},
			wantHost: "127.0.0.1", wantPort: 7000,
			wantDrain: time.Minute, wantStop: 70 * time.Second, wantReady: 20 * time.Second,
			wantStateDir: "/w/.patchd", wantWritable: []string{"/w"},
		},
		{
			name: "longest drain wins",
			spec: Spec{Exe: "/bin/patchd", Workspace: "/w", DrainTimeout: 5 * time.Second,
				Args: []string{"-drain-timeout", "1500ms", "-start-timeout=2s"}},
			wantHost: "127.0.0.1", wantPort: 5555,
			wantDrain: 5 * time.Second, wantStop: 15 * time.Second, wantReady: 7 * time.Second,
			wantStateDir: "/w/.patchd", wantWritable: []string{"/w"},
		},
		{
			name: "paths relative to the workspace; nested ones merged",
			spec: Spec{Exe: "/bin/patchd", Workspace: "/w/",
				Args: []string{"--state-dir", "../state", "--summaries-dir", "/w/docs", "--pid-file", "/run/p/patchd.pid"}},
			wantHost: "127.0.0.1", wantPort: 5555,
			wantDrain: 10 * time.Second, wantStop: 20 * time.Second, wantReady: 20 * time.Second,
			wantStateDir: "/state", wantWritable: []string{"/w", "/state", "/run/p"},
		},
		{
			name:     "Spec.StateDir over the flag; both writable",
			spec:     Spec{Exe: "/bin/patchd", Workspace: "/w", StateDir: "/var/lib/p", Args: []string{"--state-dir", "/srv/s"}},
			wantHost: "127.0.0.1", wantPort: 5555,
			wantDrain: 10 * time.Second, wantStop: 20 * time.Second, wantReady: 20 * time.Second,
			wantStateDir: "/var/lib/p", wantWritable: []string{"/w", "/var/lib/p", "/srv/s"},
		},
		{
			name:     "flags end at the first non-flag",
			spec:     Spec{Exe: "/bin/patchd", Workspace: "/w", Args: []string{"--no-auth", "--port", "6000", "extra", "--port", "7000"}},
			wantHost: "127.0.0.1", wantPort: 6000,
			wantDrain: 10 * time.Second, wantStop: 20 * time.Second, wantReady: 20 * time.Second,
			wantStateDir: "/w/.patchd", wantWritable: []string{"/w"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := resolve(tt.spec)
			if err != nil {
				t.Fatalf("resolve(%+v) = %v", tt.spec, err)
			}
			if p.host != tt.wantHost || p.port != tt.wantPort {
				t.Errorf("address = %s port %d, want %s port %d", p.host, p.port, tt.wantHost, tt.wantPort)
			}
			if p.drain != tt.wantDrain || p.stop != tt.wantStop || p.ready != tt.wantReady {
				t.Errorf("drain, stop, ready = %s, %s, %s, want %s, %s, %s", p.drain, p.stop, p.ready, tt.wantDrain, tt.wantStop, tt.wantReady)
			}
			if p.stateDir != tt.wantStateDir {
				t.Errorf("state dir = %q, want %q", p.stateDir, tt.wantStateDir)
			}
			if !slices.Equal(p.writable, tt.wantWritable) {
				t.Errorf("writable = %q, want %q", p.writable, tt.wantWritable)
			}
		})
	}
}

// TestRefused checks that every generator refuses a Spec it cannot render
// faithfully, with an error naming the field.
func TestRefused(t *testing.T) {
	ok := Spec{Exe: "/opt/patchd/bin/patchd", Workspace: "/home/dev/ws"}
	with := func(f func(*Spec)) Spec {
		s := ok
		s.Env = map[string]string{}
		f(&s)
		return s
	}
	tests := []struct {
		name string
		spec Spec
		want string // in the error
	}{
		{"no exe", with(func(s *Spec) { s.Exe = "" }), "exe"},
		{"relative exe", with(func(s *Spec) { s.Exe = "bin/patchd" }), "exe"},
		{"relative workspace", with(func(s *Spec) { s.Workspace = "ws" }), "workspace"},
		{"name with slash", with(func(s *Spec) { s.Name = "a/b" }), "name"},
		{"name starting with dash", with(func(s *Spec) { s.Name = "-a" }), "name"},
		{"name with double dash", with(func(s *Spec) { s.Name = "a--b" }), "name"},
		{"newline in arg", with(func(s *Spec) { s.Args = []string{"--log-level", "info\nExecStartPre=/bin/sh"} }), "args[1]"},
		{"invalid UTF-8 in workspace", with(func(s *Spec) { s.Workspace = "/home/\xff" }), "UTF-8"},
		{"tab in state dir", with(func(s *Spec) { s.StateDir = "/a\tb" }), "state dir"},
		{"env name with dash", with(func(s *Spec) { s.Env["A-B"] = "x" }), "A-B"},
		{"env name with digit first", with(func(s *Spec) { s.Env["1X"] = "x" }), "1X"},
		{"env set by the supervisor", with(func(s *Spec) { s.Env["NOTIFY_SOCKET"] = "/x" }), "NOTIFY_SOCKET"},
		{"env internal to patchd", with(func(s *Spec) { s.Env["PATCHD_INTERNAL_LOCK_FD"] = "3" }), "PATCHD_INTERNAL_LOCK_FD"},
		{"newline in env value", with(func(s *Spec) { s.Env["X"] = "a\nb" }), "env X"},
		{"bad user", with(func(s *Spec) { s.User = "a b" }), "user"},
		{"relative PATH entry", with(func(s *Spec) { s.Path = "/usr/bin:.:/bin" }), `entry "." is not absolute`},
		{"empty PATH entry", with(func(s *Spec) { s.Path = "/usr/bin::/bin" }), `entry "" is not absolute`},
		{"PATH twice", with(func(s *Spec) { s.Path = "/usr/bin"; s.Env["PATH"] = "/bin" }), "env PATH"},
		{"newline in PATH", with(func(s *Spec) { s.Path = "/usr/bin\n/bin" }), "path"},
		{"bad port", with(func(s *Spec) { s.Args = []string{"--port", "http"} }), "--port"},
		{"port out of range", with(func(s *Spec) { s.Env["PATCHD_PORT"] = "70000" }), "--port"},
		{"flag without value", with(func(s *Spec) { s.Args = []string{"--no-auth", "--port"} }), "--port"},
		{"bad drain", with(func(s *Spec) { s.Args = []string{"--drain-timeout=10"} }), "--drain-timeout"},
		{"negative drain", with(func(s *Spec) { s.DrainTimeout = -time.Second }), "drain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for gen, err := range map[string]error{
				"PM2":     second(PM2(tt.spec)),
				"Systemd": third(Systemd(tt.spec)),
				"Launchd": second(Launchd(tt.spec)),
			} {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s(%s) error = %v, want one naming %q", gen, tt.name, err, tt.want)
				}
			}
		})
	}
}

func second(_ string, err error) error   { return err }
func third(_, _ string, err error) error { return err }

// TestBoolFlagsMatchConfig keeps isBoolFlag in step with patchd's flags: a
// boolean flag unknown here would make scanFlags take the next flag for its
// value.
func TestBoolFlagsMatchConfig(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	config.Register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		isBool := ok && b.IsBoolFlag()
		if got := isBoolFlag(f.Name); got != isBool {
			t.Errorf("isBoolFlag(%q) = %v, want %v (as internal/config registers it)", f.Name, got, isBool)
		}
	})
}
