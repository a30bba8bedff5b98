package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// completeCommand is the hidden command the completion scripts call on
// every TAB: `patchd __complete WORD... CURRENT` prints the candidates for
// CURRENT, one "word<TAB>description" a line, or the single line ":files"
// when a file name fits there. The scripts are thin: what to complete is
// decided here, from the command table the dispatcher uses, by the binary
// being completed, so they cannot drift from it.
const completeCommand = "__complete"

// filesDirective asks the script for file names.
const filesDirective = ":files"

// shells are the shells `patchd completion` writes a script for.
func shells() []string { return []string{"bash", "zsh", "fish"} }

// runCompletion is `patchd completion bash|zsh|fish`.
func runCompletion(ctx context.Context, env *Env, args []string) error {
	_, rest, err := parse(env, "completion", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return exit(ExitUsage, "completion: want one of bash, zsh, fish; see 'patchd help completion'")
	}
	switch rest[0] {
	case "bash":
		io.WriteString(env.Stdout, bashScript)
	case "zsh":
		io.WriteString(env.Stdout, zshScript)
	case "fish":
		io.WriteString(env.Stdout, fishScript)
	default:
		hint := ""
		if s := closest(rest[0], shells()); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		return exit(ExitUsage, "completion: unknown shell %q%s: want bash, zsh or fish", rest[0], hint)
	}
	return nil
}

// runComplete is the hidden `patchd __complete`: no flags of its own, all
// its arguments are the command line being completed.
func runComplete(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		args = []string{""}
	}
	cands, files := complete(ctx, args)
	if files {
		fmt.Fprintln(env.Stdout, filesDirective)
		return nil
	}
	for _, c := range cands {
		fmt.Fprintf(env.Stdout, "%s\t%s\n", c[0], c[1])
	}
	return nil
}

// complete returns the candidates (word, description) for the last of
// words, the command line after "patchd", or files when a file name fits.
func complete(ctx context.Context, words []string) (cands [][2]string, files bool) {
	cur, before := words[len(words)-1], words[:len(words)-1]
	cmds := commands()
	var name string
	var pos []string
	var fs *flag.FlagSet
	var own map[string]bool
	for i := 0; i < len(before); i++ {
		w := before[i]
		if w == "--" {
			pos = append(pos, before[i+1:]...)
			break
		}
		if len(w) > 1 && strings.HasPrefix(w, "-") {
			if fs == nil || strings.Contains(w, "=") {
				continue
			}
			if f := fs.Lookup(strings.TrimLeft(w, "-")); f != nil && !isBool(f) {
				if i == len(before)-1 {
					return nil, true // cur is this flag's value
				}
				i++
			}
			continue
		}
		if name == "" {
			name = w
			if c, ok := cmds[name]; ok && !c.hidden {
				fs, own = flagsOf(ctx, name)
			}
			continue
		}
		pos = append(pos, w)
	}
	cmd, known := cmds[name]
	add := func(word, desc string) {
		if strings.HasPrefix(word, cur) {
			cands = append(cands, [2]string{word, desc})
		}
	}
	addCommands := func() {
		for _, n := range commandNames() {
			add(n, cmds[n].summary)
		}
	}
	switch {
	case name == "" && strings.HasPrefix(cur, "-"):
		add("--help", "list the commands")
		add("--version", "print the version")
	case name == "":
		addCommands()
	case !known || cmd.hidden:
	case strings.HasPrefix(cur, "-"):
		var sub *subcommand
		if len(pos) > 0 {
			if s, ok := findSub(cmd, pos[0]); ok {
				sub = &s
			}
		}
		mine, common := shownFlags(cmd, sub, fs, own)
		for _, f := range append(mine, common...) {
			add("--"+f.Name, firstClause(f.Usage))
		}
		add("--help", "show this command's help")
	case name == "help" && len(pos) == 0:
		addCommands()
	case name == "help" && len(pos) == 1:
		for _, s := range cmds[pos[0]].subs {
			add(s.name, s.summary)
		}
	case len(cmd.subs) > 0 && len(pos) == 0:
		for _, s := range cmd.subs {
			add(s.name, s.summary)
		}
	case len(cmd.args) > 0 && len(pos) == 0:
		for _, a := range cmd.args {
			add(a, "")
		}
	case cmd.files:
		return nil, true
	}
	return cands, false
}

// firstClause is a flag's usage up to its first ";" or its default, for
// a completion menu.
func firstClause(s string) string {
	for _, sep := range []string{";", " (default"} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return strings.TrimSpace(s)
}

// flagsOf returns the flags a command registers, and which of them are
// its own (not the common settings), by asking it for its help.
func flagsOf(ctx context.Context, name string) (*flag.FlagSet, map[string]bool) {
	fs, own := flag.NewFlagSet(name, flag.ContinueOnError), map[string]bool{}
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" },
		describe: func(f *flag.FlagSet, o map[string]bool) { fs, own = f, o }}
	commands()[name].run(ctx, env, []string{"--help"})
	return fs, own
}

const bashScript = `# bash completion for patchd, from 'patchd completion bash'.
# Load it with: source <(patchd completion bash)
_patchd() {
    local cur=${COMP_WORDS[COMP_CWORD]} line IFS=$'\n'
    local -a out
    out=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
    COMPREPLY=()
    if [[ ${#out[@]} -eq 1 && ${out[0]} == :files ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
    fi
    for line in "${out[@]}"; do
        COMPREPLY+=("${line%%$'\t'*}")
    done
    return 0
}
complete -F _patchd patchd
`

const zshScript = `#compdef patchd
# zsh completion for patchd, from 'patchd completion zsh'.
# Put it in your $fpath as _patchd, or: source <(patchd completion zsh)
_patchd() {
    local -a out cands
    local line
    out=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ ${#out} -eq 1 && ${out[1]} == :files ]]; then
        _files
        return
    fi
    for line in "${out[@]}"; do
        [[ -z $line ]] && continue
        cands+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
    done
    _describe -t patchd patchd cands
}
if [[ ${funcstack[1]} == _patchd ]]; then
    _patchd "$@"
else
    compdef _patchd patchd
fi
`

const fishScript = `# fish completion for patchd, from 'patchd completion fish'.
# Save it as ~/.config/fish/completions/patchd.fish
function __patchd_complete
    set -l tokens (commandline -opc)
    set -l exe $tokens[1]
    set -e tokens[1]
    set -l out ($exe __complete $tokens (commandline -ct) 2>/dev/null)
    if test "$out" = ":files"
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $out
end
complete -c patchd -f -a '(__patchd_complete)'
`
