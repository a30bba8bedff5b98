package service

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unit is a parsed unit file: section → key → values in order.
type unit map[string]map[string][]string

// parseUnit reads a unit file the way systemd's parser splits it, and fails
// on what this package never writes: a line outside a section, a line with
// no '=', and a line continued by a final backslash.
func parseUnit(text string) (unit, error) {
	u := unit{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("line %d: continued by a backslash: %q", i+1, line)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no '=': %q", i+1, line)
		}
		if section == "" {
			return nil, fmt.Errorf("line %d: outside a section: %q", i+1, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u, nil
}

// get returns the one value of key in section.
func (u unit) get(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Errorf("[%s] %s = %q, want exactly one value", section, key, vs)
		return ""
	}
	return vs[0]
}

// sdSplit undoes sdWord on a whole value, as systemd reads ExecStart=
// (exec) or a list setting: words split at blanks, "..." and '...'
// quoting, C backslash escapes, then "%%" → "%" and, in commands, "$$" → "$".
// Any other '%' or '$' is an error, since systemd would expand it, and so is
// an unquoted lone ';', which would separate commands.
func sdSplit(value string, exec bool) ([]string, error) {
	var words []string
	rs := []rune(value)
	for i := 0; i < len(rs); {
		if rs[i] == ' ' || rs[i] == '\t' {
			i++
			continue
		}
		var w strings.Builder
		start := i
		var quote rune
	word:
		for ; i < len(rs); i++ {
			r := rs[i]
			switch {
			case r == '\\':
				if i+1 == len(rs) {
					return nil, fmt.Errorf("%q: trailing backslash", value)
				}
				i++
				switch e := rs[i]; e {
				case 'n':
					w.WriteRune('\n')
				case 't':
					w.WriteRune('\t')
				case '\\', '"', '\'', ' ', ';':
					w.WriteRune(e)
				default:
					return nil, fmt.Errorf("%q: escape \\%c not used by sdWord", value, e)
				}
			case quote != 0 && r == quote:
				quote = 0
			case quote != 0:
				w.WriteRune(r)
			case r == '"' || r == '\'':
				quote = r
			case r == ' ' || r == '\t':
				break word
			default:
				w.WriteRune(r)
			}
		}
		if quote != 0 {
			return nil, fmt.Errorf("%q: unterminated quote", value)
		}
		if exec && string(rs[start:i]) == ";" && len(words) > 0 {
			return nil, fmt.Errorf("%q: a lone ; separates commands", value)
		}
		// The executable is a path: specifiers apply, variables do not.
		word, err := unescapeExpansions(w.String(), exec && len(words) > 0)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", value, err)
		}
		words = append(words, word)
	}
	return words, nil
}

func unescapeExpansions(s string, exec bool) (string, error) {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '%' || (exec && r == '$') {
			if i+1 == len(rs) || rs[i+1] != r {
				return "", fmt.Errorf("unescaped %c in %q would be expanded", r, s)
			}
			i++
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

func TestSdWordRoundTrip(t *testing.T) {
	tests := []string{
		"plain", "", " ", "a b", `"`, `'`, `\`, `\\`, `a\"b`, "%", "%%", "%n",
		"$", "$$", "${HOME}", "$HOME", ";", "a;b", `\;`, "tab\there", "é ü",
		"-x", "--port=1", "'quoted'", `"dq"`, "back\\slash at end\\",
	}
	for _, exec := range []bool{true, false} {
		for _, s := range tests {
			// A command line starts with the executable; s is an argument.
			rendered := sdWord(s, exec)
			got, err := sdSplit("/bin/x "+rendered, exec)
			if err != nil {
				t.Errorf("sdSplit(sdWord(%q, %v) = %s) = %v", s, exec, rendered, err)
				continue
			}
			if want := []string{"/bin/x", s}; !slices.Equal(got, want) {
				t.Errorf("sdSplit(sdWord(%q, %v) = %s) = %q, want %q", s, exec, rendered, got, want)
			}
		}
	}
}

func FuzzSdWord(f *testing.F) {
	for _, s := range []string{"a b", `"\`, "%$;", "it's 100%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkText("fuzz", s) != nil {
			t.Skip("refused by resolve")
		}
		for _, exec := range []bool{true, false} {
			rendered := sdWord(s, exec)
			got, err := sdSplit("/bin/x "+rendered, exec)
			if err != nil || !slices.Equal(got, []string{"/bin/x", s}) {
				t.Fatalf("sdSplit(sdWord(%q, %v) = %s) = %q, %v", s, exec, rendered, got, err)
			}
		}
	})
}

// TestSystemdUnits parses the units of every golden case and checks the
// settings patchd depends on, reading values back through sdSplit.
func TestSystemdUnits(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			svcText, sockText, err := Systemd(tc.spec)
			if err != nil {
				t.Fatalf("Systemd: %v", err)
			}
			p, err := resolve(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := parseUnit(svcText)
			if err != nil {
				t.Fatalf("service unit: %v", err)
			}
			sock, err := parseUnit(sockText)
			if err != nil {
				t.Fatalf("socket unit: %v", err)
			}
			sockName := p.name + ".socket"

			if got := svc.get(t, "Unit", "Wants"); got != sockName {
				t.Errorf("Wants = %q, want %q", got, sockName)
			}
			if got := strings.Fields(svc.get(t, "Unit", "After")); !slices.Contains(got, sockName) || !slices.Contains(got, "network.target") {
				t.Errorf("After = %q, want network.target and %s", got, sockName)
			}

			exec, err := sdSplit(svc.get(t, "Service", "ExecStart"), true)
			if err != nil {
				t.Fatalf("ExecStart: %v", err)
			}
			if want := append([]string{tc.spec.Exe, "run"}, tc.spec.Args...); !slices.Equal(exec, want) {
				t.Errorf("ExecStart = %q, want %q", exec, want)
			}
			wd, err := unescapeExpansions(svc.get(t, "Service", "WorkingDirectory"), false)
			if err != nil || wd != tc.spec.Workspace {
				t.Errorf("WorkingDirectory = %q, %v, want %q", wd, err, tc.spec.Workspace)
			}
			var env []string
			for _, v := range svc["Service"]["Environment"] {
				words, err := sdSplit(v, false)
				if err != nil {
					t.Fatalf("Environment: %v", err)
				}
				env = append(env, words...)
			}
			var wantEnv []string
			for k, v := range specEnv(tc.spec) {
				wantEnv = append(wantEnv, k+"="+v)
			}
			slices.Sort(env)
			slices.Sort(wantEnv)
			if !slices.Equal(env, wantEnv) {
				t.Errorf("Environment = %q, want %q", env, wantEnv)
			}

			for key, want := range map[string]string{
				"Type":                     "notify",
				"NotifyAccess":             "main",
				"Restart":                  "on-failure",
				"RestartPreventExitStatus": fmt.Sprintf("%d %d", exitNoPort, exitAlreadyRunning),
				"KillSignal":               "SIGTERM",
				"ExecReload":               "/bin/kill -HUP $MAINPID",
				"NoNewPrivileges":          "yes",
			} {
				if got := svc.get(t, "Service", key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			stop, err := strconv.Atoi(strings.TrimSuffix(svc.get(t, "Service", "TimeoutStopSec"), "s"))
			if err != nil || int64(stop) < seconds(p.drain)+5 {
				t.Errorf("TimeoutStopSec = %d s (%v), want at least the drain (%s) + 5s", stop, err, p.drain)
			}

			if tc.spec.User != "" {
				if got := svc.get(t, "Service", "User"); got != tc.spec.User {
					t.Errorf("User = %q, want %q", got, tc.spec.User)
				}
				if got := svc.get(t, "Service", "ProtectSystem"); got != "strict" {
					t.Errorf("ProtectSystem = %q, want strict", got)
				}
				rw, err := sdSplit(svc.get(t, "Service", "ReadWritePaths"), false)
				if err != nil {
					t.Fatalf("ReadWritePaths: %v", err)
				}
				if len(rw) == 0 || rw[0] != tc.spec.Workspace {
					t.Errorf("ReadWritePaths = %q, want the workspace %q first", rw, tc.spec.Workspace)
				}
				if !slices.Contains(rw, "-"+p.stateDir) && !within(p.workspace, p.stateDir) {
					t.Errorf("ReadWritePaths = %q, want the state dir %q", rw, p.stateDir)
				}
			} else {
				// A user unit must not need user namespaces to start.
				for _, key := range []string{"User", "PrivateTmp", "ProtectSystem", "ReadWritePaths"} {
					if v, ok := svc["Service"][key]; ok {
						t.Errorf("user unit sets %s=%q", key, v)
					}
				}
			}
			if got := svc.get(t, "Install", "WantedBy"); got != "default.target" {
				t.Errorf("WantedBy = %q, want default.target", got)
			}

			listen, err := listenAddress(p.host, p.port)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := unescapeExpansions(sock.get(t, "Socket", "ListenStream"), false); got != listen {
				t.Errorf("ListenStream = %q, want %q", got, listen)
			}
			for key, want := range map[string]string{
				"NoDelay":            "true",
				"FileDescriptorName": "http",
				"Service":            p.name + ".service",
			} {
				if got := sock.get(t, "Socket", key); got != want {
					t.Errorf("socket %s = %q, want %q", key, got, want)
				}
			}
			if got := sock.get(t, "Install", "WantedBy"); got != "sockets.target" {
				t.Errorf("socket WantedBy = %q, want sockets.target", got)
			}
		})
	}
}

func TestListenAddress(t *testing.T) {
	tests := []struct {
		host    string
		port    int
		want    string
		wantErr bool
	}{
		{host: "127.0.0.1", port: 5555, want: "127.0.0.1:5555"},
		{host: "localhost", port: 5555, want: "127.0.0.1:5555"},
		{host: "0.0.0.0", port: 80, want: "0.0.0.0:80"},
		{host: "::1", port: 7000, want: "[::1]:7000"},
		{host: "::", port: 7000, want: "[::]:7000"},
		{host: "example.com", port: 5555, wantErr: true},
		{host: "127.0.0.1", port: 0, wantErr: true},
	}
	for _, tt := range tests {
		got, err := listenAddress(tt.host, tt.port)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("listenAddress(%q, %d) = %q, %v, want %q (error: %v)", tt.host, tt.port, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSystemdRefused(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"any port", Spec{Exe: "/bin/patchd", Workspace: "/w", Args: []string{"--port", "0"}}, "--port 0"},
		{"host name", Spec{Exe: "/bin/patchd", Workspace: "/w", Args: []string{"--host", "box.local"}}, "box.local"},
		{"workspace ending in a space", Spec{Exe: "/bin/patchd", Workspace: "/w "}, "workspace"},
		{"workspace ending in a backslash", Spec{Exe: "/bin/patchd", Workspace: `/w\`}, "workspace"},
		{"exe with a quote", Spec{Exe: `/opt/it's/patchd`, Workspace: "/w"}, "exe"},
		{"exe with a backslash", Spec{Exe: `/opt/a\b/patchd`, Workspace: "/w"}, "exe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Systemd(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Systemd(%+v) error = %v, want one naming %q", tt.spec, err, tt.want)
			}
		})
	}
}

// TestSystemdAnalyzeVerify has systemd itself load the units, with an
// executable at a path full of characters that need quoting, so that a
// quoting or specifier mistake makes systemd look for another file.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH")
	}
	base := t.TempDir()
	// "%n" is a specifier: left unescaped, systemd would look for another file.
	exe := filepath.Join(base, "bin 100%n $x;", "patchd")
	ws := filepath.Join(base, "my project")
	for _, d := range []string{filepath.Dir(exe), ws} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		user string
	}{{"user-unit", ""}, {"system-unit", "root"}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{
				Name: "patchd-verify", Exe: exe, Workspace: ws, User: tc.user,
				StateDir: filepath.Join(base, "state 50%"),
				Args:     []string{"--log-level", "debug", "--pid-file", "$HOME/p.pid", ";"},
				Env:      map[string]string{"PATCHD_NOTE": `100% "$x" \ y`},
			}
			svc, sock, err := Systemd(spec)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			svcPath := filepath.Join(dir, "patchd-verify.service")
			sockPath := filepath.Join(dir, "patchd-verify.socket")
			if err := os.WriteFile(svcPath, []byte(svc), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sockPath, []byte(sock), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(analyze, "verify", svcPath, sockPath)
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze verify: %v\n%s\n--- service\n%s\n--- socket\n%s", err, out, svc, sock)
			}
			// Warnings about our own files (unknown keys, bad values that
			// systemd ignores) do not change the exit code; catch them too.
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "patchd-verify") {
					t.Errorf("systemd-analyze verify: %s", line)
				}
			}
		})
	}
}
