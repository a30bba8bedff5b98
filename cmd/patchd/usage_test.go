package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// patchd runs the binary with args and no workspace of a test.
func patchd(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(patchdBin, args...)
	cmd.Env = cleanEnv()
	cmd.Dir = t.TempDir()
	return runCmd(t, cmd)
}

// TestHelpProcess: the real binary's help, version and usage errors, as a
// person meets them: `patchd help send` and `patchd send --help` print
// send's usage with only its flags and an example, exit 0; `patchd help`
// lists the commands, exit 0; a misspelled flag is one line with the
// closest flag and where the help is, exit 2, not the whole usage; an
// unknown command suggests the closest; --version prints the version.
func TestHelpProcess(t *testing.T) {
	t.Parallel()
	h := patchd(t, "help", "send")
	if h.code != 0 || !strings.Contains(h.stdout, "Usage: patchd send") || !strings.Contains(h.stdout, "--wait") ||
		!strings.Contains(h.stdout, "Example:") || strings.Contains(h.stdout, "--metrics-public") || h.stderr != "" {
		t.Errorf("help send: %s, want exit 0, send's usage with --wait, an example, not --metrics-public", h)
	}
	for _, args := range [][]string{{"send", "--help"}, {"send", "-h"}} {
		if r := patchd(t, args...); r != h {
			t.Errorf("%v: %s, want what 'patchd help send' printed", args, r)
		}
	}
	if r := patchd(t, "patches", "list", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--cursor") || strings.Contains(r.stdout, "--after") {
		t.Errorf("patches list --help: %s, want exit 0 and list's flags only", r)
	}
	all := patchd(t, "help")
	if all.code != 0 || !regexp.MustCompile(`(?m)^  completion +\S`).MatchString(all.stdout) || !regexp.MustCompile(`(?m)^  send +\S`).MatchString(all.stdout) {
		t.Errorf("help: %s, want exit 0 and one line a command", all)
	}
	if r := patchd(t, "--help"); r != all {
		t.Errorf("--help: %s, want what 'patchd help' printed", r)
	}
	r := patchd(t, "start", "--prot", "5555")
	want := "patchd: start: flag provided but not defined: -prot (did you mean --port?); see 'patchd help start'\n"
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("start --prot: %s, want exit 2 and only %q", r, want)
	}
	if r := patchd(t, "stauts"); r.code != 2 || r.stderr != "patchd: unknown command \"stauts\" (did you mean status?); see 'patchd help'\n" {
		t.Errorf("stauts: %s, want exit 2 suggesting status", r)
	}
	v := patchd(t, "version")
	for _, f := range []string{"--version", "-v"} {
		if r := patchd(t, f); r.code != 0 || r.stdout != v.stdout || !strings.HasPrefix(r.stdout, "patchd ") {
			t.Errorf("%s: %s, want exit 0 and %q", f, r, v.stdout)
		}
	}
}

// TestCompletionProcess: `patchd completion bash|zsh|fish` prints scripts
// the shells parse (bash -n, zsh -n, fish -n; a shell that is not
// installed is skipped, saying so), and they complete: bash's function,
// called as bash calls it, turns `patchd pat` into `patches` and offers
// list's flags and not revert's; fish's `complete -C` does the same.
func TestCompletionProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The scripts call the patchd being completed: this one, on PATH.
	env := append(cleanEnv(), "PATH="+filepath.Dir(patchdBin)+":"+os.Getenv("PATH"))
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := patchd(t, "completion", sh)
		if r.code != 0 || r.stdout == "" {
			t.Fatalf("completion %s: %s", sh, r)
		}
		script := filepath.Join(dir, "patchd."+sh)
		os.WriteFile(script, []byte(r.stdout), 0o644)
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("%s is not installed: its script is not checked", sh)
			continue
		}
		if out, err := exec.Command(sh, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
	bash := func(line string) string {
		t.Helper()
		prog := `source "$1"; read -ra COMP_WORDS <<< "$2"; [[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _patchd; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", "-c", prog, "bash", filepath.Join(dir, "patchd.bash"), line)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completing %q: %v\n%s", line, err, out)
		}
		return string(out)
	}
	if got := bash("patchd pat"); got != "patches\n" {
		t.Errorf("bash: patchd pat<TAB> = %q, want patches", got)
	}
	if got := bash("patchd patches list --"); !strings.Contains(got, "--cursor\n") || !strings.Contains(got, "--state\n") || strings.Contains(got, "--wait") {
		t.Errorf("bash: patchd patches list --<TAB> = %q, want list's flags, not revert's --wait", got)
	}
	if got := bash("patchd send --wa"); got != "--wait\n" {
		t.Errorf("bash: patchd send --wa<TAB> = %q, want --wait", got)
	}
	os.WriteFile(filepath.Join(dir, "fix.json"), nil, 0o644)
	if got := bash("patchd send " + filepath.Join(dir, "fi")); got != filepath.Join(dir, "fix.json")+"\n" {
		t.Errorf("bash: patchd send FILE<TAB> = %q, want the file", got)
	}
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Log("zsh is not installed: its completion is not driven")
	} else {
		// compinit's functions stubbed: _describe prints what it was given.
		prog := `compdef() { :; }; _files() { print files; }; _describe() { print -l -- "${(@P)argv[-1]}"; }
source "$1"; words=(${=2}); [[ $2 == *" " ]] && words+=(""); CURRENT=${#words}; _patchd`
		cmd := exec.Command("zsh", "-f", "-c", prog, "zsh", filepath.Join(dir, "patchd.zsh"), "patchd patches w")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "watch:follow the events") {
			t.Errorf("zsh: patchd patches w<TAB>: %v %q, want watch with its summary", err, out)
		}
	}
	if _, err := exec.LookPath("fish"); err != nil {
		t.Log("fish is not installed: its completion is not driven")
		return
	}
	cmd := exec.Command("fish", "--no-config", "-c", `source $argv[1]; complete -C "patchd pat"; complete -C "patchd patches watch --"`, filepath.Join(dir, "patchd.fish"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "patches\t") || !strings.Contains(string(out), "--after\t") || strings.Contains(string(out), "--limit") {
		t.Errorf("fish: %v\n%s\nwant patches, then watch's flags", err, out)
	}
}

// TestListColorProcess: `patches list` colours the states on a terminal
// (a pseudo-terminal from script(1)), never with NO_COLOR, into a pipe or
// with --json; --limit pages with --cursor, the next cursor said on
// stderr.
func TestListColorProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, f := range []string{"a.txt", "b.txt"} {
		os.WriteFile(filepath.Join(e.ws, f), []byte("seed\n"), 0o644)
	}
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	for _, id := range []string{"pa", "pb"} {
		p := filepath.Join(t.TempDir(), id+".json")
		os.WriteFile(p, seedBlock(id, strings.TrimPrefix(id, "p")+".txt"), 0o600)
		if r := e.run("send", "--wait", p); r.code != 0 {
			t.Fatalf("send %s: %s", id, r)
		}
	}
	piped := e.run("patches", "list")
	if piped.code != 0 || !strings.Contains(piped.stdout, "applied") || strings.Contains(piped.stdout, "\x1b[") {
		t.Errorf("patches list into a pipe: %s, want the patches, no escape codes", piped)
	}
	if _, err := exec.LookPath("script"); err != nil {
		t.Log("script(1) is not installed: the terminal cases are not run")
	} else {
		onTTY := func(noColor bool, extra ...string) string {
			t.Helper()
			args := e.command("patches", "list").Args
			var q []string
			for _, a := range append(args, extra...) {
				q = append(q, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
			}
			cmd := exec.Command("script", "-qec", strings.Join(q, " "), "/dev/null")
			cmd.Env = append(e.env(), "TERM=xterm-256color")
			if noColor {
				cmd.Env = append(cmd.Env, "NO_COLOR=1")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("script %v: %v\n%s", q, err, out)
			}
			return string(out)
		}
		if out := onTTY(false); !strings.Contains(out, "\x1b[32mapplied") {
			t.Errorf("patches list on a terminal: %q, want applied in green", out)
		}
		if out := onTTY(false, "--json"); strings.Contains(out, "\x1b[") {
			t.Errorf("patches list --json on a terminal: %q, want no escape codes", out)
		}
		if out := onTTY(true); !strings.Contains(out, "applied") || strings.Contains(out, "\x1b[") {
			t.Errorf("NO_COLOR patches list on a terminal: %q, want no escape codes", out)
		}
	}
	first := e.run("patches", "list", "--limit", "1")
	m := regexp.MustCompile(`more: patchd patches list --cursor (\S+)\n`).FindStringSubmatch(first.stderr)
	if first.code != 0 || !strings.Contains(first.stdout, "pb ") || m == nil {
		t.Fatalf("patches list --limit 1: %s, want pb and the next cursor on stderr", first)
	}
	if next := e.run("patches", "list", "--limit", "1", "--cursor", m[1]); next.code != 0 || !strings.Contains(next.stdout, "pa ") || strings.Contains(next.stdout, "pb ") {
		t.Errorf("patches list --cursor %s: %s, want pa alone", m[1], next)
	}
}
