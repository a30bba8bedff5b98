package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestCommandHelp: `patchd help CMD`, `patchd CMD --help` and `-h` print
// the same help, exit 0: the command's usage, only the flags it uses (its
// own and the settings it reads; a client command not the daemon's) and
// an example; for every command and every subcommand of patches.
func TestCommandHelp(t *testing.T) {
	type topic struct {
		args      []string
		want, not []string
	}
	var topics []topic
	for _, name := range commandNames() {
		cmd := commands()[name]
		tp := topic{args: []string{name}, want: []string{"Usage: patchd " + name, "Example:\n  ", "--help"}}
		// The gateway serves HTTP: it uses the port, not the daemon's others.
		if !cmd.everyCommon && name != "help" && name != "gateway" {
			tp.not = append(tp.not, "--metrics-public", "--port", "--check-sandbox")
		}
		topics = append(topics, tp)
		for _, s := range cmd.subs {
			tp := topic{args: []string{name, s.name}, want: []string{"Usage: patchd " + name + " " + s.name, "Example:\n  "}, not: []string{"--metrics-public", "--port"}}
			for _, f := range s.own {
				tp.want = append(tp.want, "--"+f)
			}
			topics = append(topics, tp)
		}
	}
	topics = append(topics,
		topic{args: []string{"send"}, want: []string{"--wait", "--dry-run", "--json", "--workspace", "--state-dir", "FILE|-"}},
		topic{args: []string{"gateway"}, want: []string{"--nats", "--embedded-nats", "--workspaces", "--port", "--state-dir"}, not: []string{"--check-sandbox", "--git", "--retain"}},
		topic{args: []string{"run"}, want: []string{"--port", "--metrics-public", "--retain", "--if-running"}},
		topic{args: []string{"patches", "list"}, want: []string{"--state", "--limit", "--cursor"}, not: []string{"--wait", "--after", "--dry-run"}},
		topic{args: []string{"patches", "watch"}, want: []string{"--after"}, not: []string{"--limit", "--wait"}},
		topic{args: []string{"patches", "prune"}, want: []string{"--retain", "--dry-run"}, not: []string{"--limit"}},
		topic{args: []string{"patches"}, want: []string{"Subcommands:", "  watch ", "patchd help patches SUBCOMMAND"}, not: []string{"--limit"}},
	)
	for _, tp := range topics {
		t.Run(strings.Join(tp.args, " "), func(t *testing.T) {
			h := run(t.Context(), nil, "", append([]string{"help"}, tp.args...)...)
			if h.code != ExitOK || h.stderr != "" {
				t.Fatalf("help: %s, want exit 0 and nothing on stderr", h)
			}
			for _, w := range tp.want {
				if !strings.Contains(h.stdout, w) {
					t.Errorf("help %v lacks %q:\n%s", tp.args, w, h.stdout)
				}
			}
			for _, n := range tp.not {
				if regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(n) + `\b`).MatchString(h.stdout) {
					t.Errorf("help %v lists %s, which it does not use:\n%s", tp.args, n, h.stdout)
				}
			}
			if tp.args[0] == "help" {
				return
			}
			for _, flag := range []string{"--help", "-h", "-help"} {
				r := run(t.Context(), nil, "", append(append([]string{}, tp.args...), flag)...)
				if r.code != ExitOK || r.stdout != h.stdout || r.stderr != "" {
					t.Errorf("%v %s: %s, want exit 0 and the help of 'patchd help %v'", tp.args, flag, r, tp.args)
				}
			}
		})
	}
	if r := run(t.Context(), nil, "", "help", "sned"); r.code != ExitUsage || !strings.Contains(r.stderr, "did you mean send?") {
		t.Errorf("help sned: %s, want exit 2 suggesting send", r)
	}
	if r := run(t.Context(), nil, "", "help", "patches", "lsit"); r.code != ExitUsage || !strings.Contains(r.stderr, "did you mean list?") {
		t.Errorf("help patches lsit: %s, want exit 2 suggesting list", r)
	}
}

// TestFlagErrors: a flag mistake is one line on stderr, naming the flag,
// suggesting the closest one, and saying where the help is, exit 2; so is
// an unknown command or subcommand, and a flag of another patches verb.
func TestFlagErrors(t *testing.T) {
	ws := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"start", "--prot", "1"}, "patchd: start: flag provided but not defined: -prot (did you mean --port?); see 'patchd help start'"},
		{[]string{"send", "--wiat", "p.json"}, "(did you mean --wait?); see 'patchd help send'"},
		{[]string{"status", "--jsn"}, "(did you mean --json?)"},
		{[]string{"patches", "list", "--stat", "failed"}, "(did you mean --state?); see 'patchd help patches list'"},
		{[]string{"patches", "list", "--after", "3"}, "patches list: --after is a flag of patches watch, not of list; see 'patchd help patches list'"},
		{[]string{"status", "--port", "http"}, `--port: must be a port number from 0 to 65535, not "http"`},
		{[]string{"status", "--json=maybe"}, `invalid value "maybe" for --json`},
		{[]string{"patches", "list", "--limit", "many"}, `invalid value "many" for --limit`},
		{[]string{"send", "--wait=2m", "p.json"}, `send: invalid value "2m" for --wait: want a duration above 0 and at most 40s; see 'patchd help send'`},
		{[]string{"status", "--workspace"}, "flag needs an argument: --workspace; see 'patchd help status'"},
		{[]string{"status", "--frobnicate"}, "flag provided but not defined: -frobnicate; see 'patchd help status'"},
		{[]string{"stauts"}, `unknown command "stauts" (did you mean status?); see 'patchd help'`},
		{[]string{"pat"}, `(did you mean patches?)`},
		{[]string{"patches", "lst"}, `patches: unknown subcommand "lst" (did you mean list?)`},
		{[]string{"completion", "bsh"}, `unknown shell "bsh" (did you mean bash?)`},
		{[]string{"--workspace", ws, "status"}, "flags follow it"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t.Context(), vars{"PATCHD_WORKSPACE": ws}, "", tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("%v: %s, want exit 2 and one line with %q", tt.args, r, tt.want)
			}
		})
	}
}

// TestVersionFlag: patchd --version and -v print what patchd version does.
func TestVersionFlag(t *testing.T) {
	want := run(t.Context(), nil, "", "version")
	for _, f := range []string{"--version", "-version", "-v"} {
		if r := run(t.Context(), nil, "", f); r != want {
			t.Errorf("%s: %s, want %s", f, r, want)
		}
	}
}

// TestClosest: the suggestion is the only name the word begins, or one
// within two edits (a swap of neighbours is one), else none.
func TestClosest(t *testing.T) {
	names := []string{"port", "host", "workspace", "state-dir", "fallback-port", "json", "start", "status", "stop"}
	for _, tt := range []struct{ in, want string }{
		{"prot", "port"}, {"prt", "port"}, {"workspce", "workspace"}, {"work", "workspace"},
		{"stauts", "status"}, {"jsno", "json"}, {"st", ""}, {"x", ""}, {"frobnicate", ""}, {"statedir", "state-dir"},
	} {
		if got := closest(tt.in, names); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestComplete: the candidates the completion scripts get, from the
// command table: commands, subcommands, each command's own flags and the
// settings it uses, arguments, and files where a file fits.
func TestComplete(t *testing.T) {
	ctx := context.Background()
	words := func(line string) []string {
		w := strings.Fields(line)
		if strings.HasSuffix(line, " ") || line == "" {
			w = append(w, "")
		}
		return w
	}
	tests := []struct {
		line      string
		want, not []string
		files     bool
	}{
		{line: "", want: []string{"start", "patches", "completion", "help"}, not: []string{completeCommand}},
		{line: "pat", want: []string{"patches"}, not: []string{"start"}},
		{line: "-", want: []string{"--help", "--version"}},
		{line: "patches ", want: []string{"list", "show", "revert", "drop", "prune", "watch"}},
		{line: "patches l", want: []string{"list"}, not: []string{"show"}},
		{line: "patches list --", want: []string{"--state", "--limit", "--cursor", "--json", "--workspace", "--help"}, not: []string{"--wait", "--after", "--port"}},
		{line: "patches --json watch --a", want: []string{"--after"}},
		{line: "send --w", want: []string{"--wait", "--workspace"}, not: []string{"--metrics-public"}},
		{line: "run --metrics-", want: []string{"--metrics-public"}},
		{line: "send ", files: true},
		{line: "send --workspace ", files: true},
		{line: "status --workspace /tmp --j", want: []string{"--json"}},
		{line: "service ", want: []string{"pm2", "systemd", "launchd"}},
		{line: "completion ", want: []string{"bash", "zsh", "fish"}},
		{line: "help pa", want: []string{"patches"}},
		{line: "help patches w", want: []string{"watch"}},
		{line: "status ", want: nil},
	}
	for _, tt := range tests {
		cands, files := complete(ctx, words(tt.line))
		got := map[string]bool{}
		for _, c := range cands {
			got[c[0]] = true
		}
		if files != tt.files {
			t.Errorf("%q: files = %v, want %v", tt.line, files, tt.files)
		}
		for _, w := range tt.want {
			if !got[w] {
				t.Errorf("%q: no %q in %v", tt.line, w, cands)
			}
		}
		for _, n := range tt.not {
			if got[n] {
				t.Errorf("%q: %q offered: %v", tt.line, n, cands)
			}
		}
	}
}
