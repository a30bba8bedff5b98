package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The command line keeps the standard flag package and a small command
// table (commands) rather than github.com/spf13/cobra or
// github.com/peterbourgon/ff: with the flag package's errors and usage
// turned off (parse), the table gives per-command help with an example,
// one-line errors with the closest flag, and completion for bash, zsh and
// fish from the same data the dispatcher uses. Cobra would bring these
// too, but also its own flag syntax (pflag: -abc groups, no -name), a
// second way to declare every common setting (config.Register serves the
// flags, PATCHD_* and the config file from one table) and a dependency
// tree in a daemon that is otherwise nearly standard library; ff adds
// env and config-file layering, which config already does.

// help prints the help of a command (and subcommand, from positional),
// or hands its flags to env.describe. It is the error parse returns for
// --help: exit 0.
func help(env *Env, name string, positional []string, fs *flag.FlagSet, own map[string]bool) error {
	if env.describe != nil {
		env.describe(fs, own)
		return quiet(ExitOK)
	}
	cmd := commands()[name]
	var sub *subcommand
	if len(cmd.subs) > 0 && len(positional) > 0 {
		s, ok := findSub(cmd, positional[0])
		if !ok {
			return unknownSub(name, cmd, positional[0])
		}
		sub = &s
	}
	writeHelp(env.Stdout, name, cmd, sub, fs, own)
	return quiet(ExitOK)
}

// findSub finds a subcommand of cmd by name.
func findSub(cmd command, name string) (subcommand, bool) {
	for _, s := range cmd.subs {
		if s.name == name {
			return s, true
		}
	}
	return subcommand{}, false
}

// unknownSub refuses a subcommand in one line, with the closest one.
func unknownSub(name string, cmd command, sub string) error {
	var names []string
	for _, s := range cmd.subs {
		names = append(names, s.name)
	}
	hint := ""
	if s := closest(sub, names); s != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", s)
	}
	return exit(ExitUsage, "%s: unknown subcommand %q%s; see 'patchd help %s'", name, sub, hint, name)
}

// writeHelp prints a command's usage, only the flags it uses, and an
// example.
func writeHelp(w io.Writer, name string, cmd command, sub *subcommand, fs *flag.FlagSet, own map[string]bool) {
	title, summary, usage, example := name, cmd.summary, cmd.usage, cmd.example
	if sub != nil {
		title, summary, usage, example = name+" "+sub.name, sub.summary, sub.usage, sub.example
	}
	fmt.Fprintf(w, "patchd %s: %s\n\nUsage: patchd %s", title, summary, title)
	if usage != "" {
		fmt.Fprintf(w, " %s", usage)
	}
	fmt.Fprintln(w)
	if sub == nil && len(cmd.subs) > 0 {
		fmt.Fprintln(w, "\nSubcommands:")
		for _, s := range cmd.subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
	}
	mine, common := shownFlags(cmd, sub, fs, own)
	mine = append(mine, &flag.Flag{Name: "help", Usage: "show this help", Value: boolValue{}})
	fmt.Fprintln(w, "\nFlags:")
	writeFlags(w, mine)
	if len(common) > 0 {
		fmt.Fprintln(w, "\nSettings (every command takes them; each also reads PATCHD_<NAME>):")
		writeFlags(w, common)
	}
	if example != "" {
		fmt.Fprintln(w, "\nExample:")
		for _, l := range strings.Split(example, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	switch {
	case sub == nil && len(cmd.subs) > 0:
		fmt.Fprintf(w, "\nRun 'patchd help %s SUBCOMMAND' for its flags.\n", name)
	case !cmd.everyCommon && name != "help":
		fmt.Fprintln(w, "\nIt also accepts the daemon's settings ('patchd help run'), so one set of flags serves every command.")
	}
}

// shownFlags are the flags a command's help shows: its own (of the
// subcommand sub, if not nil) and the common settings it uses.
func shownFlags(cmd command, sub *subcommand, fs *flag.FlagSet, own map[string]bool) (mine, common []*flag.Flag) {
	if fs == nil {
		return nil, nil
	}
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case sub != nil && contains(sub.own, f.Name):
			mine = append(mine, f)
		case sub == nil && len(cmd.subs) == 0 && own[f.Name]:
			mine = append(mine, f)
		case !own[f.Name] && (cmd.everyCommon || contains(cmd.common, f.Name)):
			common = append(common, f)
		}
	})
	return mine, common
}

// writeFlags prints flags one a line (or two, when the name is long).
func writeFlags(w io.Writer, flags []*flag.Flag) {
	if len(flags) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	for _, f := range flags {
		left := "--" + f.Name
		kind, usage := flag.UnquoteUsage(f)
		if !isBool(f) {
			left += " " + placeholder(f.Name, kind)
		}
		if d := f.DefValue; !isBool(f) && d != "" && d != "0" && d != "-1" && !strings.Contains(usage, "default") {
			usage += " (default " + d + ")"
		}
		if len(left) > 22 {
			fmt.Fprintf(w, "  %s\n  %-22s  %s\n", left, "", usage)
			continue
		}
		fmt.Fprintf(w, "  %-22s  %s\n", left, usage)
	}
}

// placeholder names a flag's value in the help: DIR, FILE, DURATION, N.
func placeholder(name, kind string) string {
	switch {
	case name == "workspace" || name == "out" || strings.HasSuffix(name, "-dir"):
		return "DIR"
	case name == "config" || strings.HasSuffix(name, "-file"):
		return "FILE"
	case kind == "int" || kind == "uint" || strings.HasSuffix(name, "port") || name == "limit" || name == "after":
		return "N"
	}
	if kind == "value" || kind == "string" {
		return "VALUE"
	}
	return strings.ToUpper(kind)
}

// isBool reports a flag that stands alone (--json, --wait).
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// boolValue is the Value of the --help line, which the flag package
// handles itself.
type boolValue struct{}

func (boolValue) String() string   { return "false" }
func (boolValue) Set(string) error { return nil }
func (boolValue) IsBoolFlag() bool { return true }
func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// flagError is a flag mistake in one line: what the flag package says,
// the closest flag for an unknown one, and where the help is.
func flagError(name string, positional []string, fs *flag.FlagSet, err error) error {
	topic := helpTopic(name, positional)
	// The flags as a person writes them: --wait (a duration or alone)
	// was "invalid boolean value ... for -wait".
	msg := strings.NewReplacer("invalid boolean value", "invalid value", "for flag -", "for --", "for -", "for --",
		"needs an argument: -", "needs an argument: --").Replace(err.Error())
	if n, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := closest(strings.TrimLeft(n, "-"), names); s != "" {
			msg += " (did you mean --" + s + "?)"
		}
	}
	return exit(ExitUsage, "%s: %s; see 'patchd help %s'", topic, msg, topic)
}

// helpTopic is the command, and its subcommand if positional starts with
// one: what 'patchd help' takes.
func helpTopic(name string, positional []string) string {
	if len(positional) > 0 {
		if _, ok := findSub(commands()[name], positional[0]); ok {
			return name + " " + positional[0]
		}
	}
	return name
}

// runHelp is `patchd help [COMMAND [SUBCOMMAND]]` (and `patchd --help`):
// the list of commands, or one command's help, exit 0.
func runHelp(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		usage(env.Stdout)
		return nil
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		writeHelp(env.Stdout, "help", commands()["help"], nil, flag.NewFlagSet("help", flag.ContinueOnError), nil)
		return nil
	}
	cmd, ok := commands()[args[0]]
	if !ok || cmd.hidden {
		return unknownCommand(args[0])
	}
	if args[0] == "help" {
		return runHelp(ctx, env, []string{"--help"})
	}
	rest := append(append([]string{}, args[1:]...), "--help")
	return cmd.run(ctx, env, rest)
}

// closest is the candidate nearest to s, for a "did you mean": the only
// one s begins, or the one within two edits (and fewer than half of s's
// letters); "" when none is close.
func closest(s string, candidates []string) string {
	sorted := append([]string{}, candidates...)
	sort.Strings(sorted)
	var prefixed []string
	for _, c := range sorted {
		if len(s) >= 2 && strings.HasPrefix(c, s) {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	best, bestD := "", 3
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestD && 2*d <= len(s) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of two neighbours that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
