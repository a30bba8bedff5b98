// Package cli implements patchd's subcommands, one file each. Every command
// registers the common settings on its own FlagSet, so one set of flags
// works for all of them.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/fsutil"
)

// Exit codes of the v1 contract.
const (
	ExitOK             = 0
	ExitFailed         = 1
	ExitUsage          = 2
	ExitNotRunning     = 3
	ExitNoPort         = 4
	ExitAlreadyRunning = 5
	// ExitStopped is `run` stopped by `patchd stop` while PM2 supervises
	// it: PM2 reports a death by signal as 0, so a stop on purpose needs
	// a code of its own for stop_exit_codes. Elsewhere such a stop exits 0.
	ExitStopped = 6
	// ExitPending is `send --wait` whose patch was stored but is not
	// finished (still queued or applying) when the wait ends.
	ExitPending = 7
)

// ExitError carries a process exit code. Its message, if any, has been
// printed already unless Print is set.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exit returns an ExitError with a message for main to print.
func exit(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// quiet returns an ExitError whose output was already printed.
func quiet(code int) error { return &ExitError{Code: code} }

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Exe is the path of this binary, for commands that spawn the daemon.
	Exe string
	// describe, when set, receives a command's flags instead of its help
	// being printed (flagsOf: the completion reads them so).
	describe func(fs *flag.FlagSet, own map[string]bool)
}

// command is one entry of the command table: the dispatcher, the help and
// the shell completion all read it, so they cannot drift apart. Its flags
// are the ones its run function registers (see flagsOf).
type command struct {
	summary string
	// usage follows "patchd NAME" in its help: its arguments.
	usage string
	// example is one or more command lines, shown by its help.
	example string
	// common names the common settings this command uses, which its help
	// shows (every command accepts all of them); everyCommon for the
	// commands that run a daemon or describe one: all of them.
	common      []string
	everyCommon bool
	// args are the words its first argument can be, for completion.
	args []string
	// subs are its subcommands (patches).
	subs []subcommand
	// files says its arguments are files, for completion.
	files bool
	// hidden keeps it out of the help and the suggestions.
	hidden bool
	run    func(ctx context.Context, env *Env, args []string) error
}

// subcommand is a verb of a command (patches list, show ...): own names
// the flags of the command that apply to it.
type subcommand struct {
	name, summary, usage, example string
	own                           []string
}

// where are the settings every command uses to find the instance.
func where(more ...string) []string {
	return append([]string{"workspace", "state-dir", "config"}, more...)
}

func commands() map[string]command {
	return map[string]command{
		"run": {summary: "run the daemon in the foreground (for PM2, systemd, launchd, a terminal)", usage: "[flags]",
			example: "patchd run --port 5555 --git", everyCommon: true, run: runRun},
		"start": {summary: "start the daemon in the background; exit 0 once it answers /health", usage: "[flags]",
			example: "patchd start --workspace ~/project --port 5555", everyCommon: true, run: runStart},
		"stop": {summary: "stop the running daemon gracefully and wait until it is gone", usage: "[flags]",
			example: "patchd stop --workspace ~/project", common: where("drain-timeout"), run: runStop},
		"restart": {summary: "replace the running daemon with the binary on disk, without dropping a request", usage: "[flags]",
			example: "patchd restart", everyCommon: true, run: runRestart},
		"status": {summary: "show whether the daemon runs, its pid, address and uptime", usage: "[--json] [flags]",
			example: "patchd status --json", common: where(), run: runStatus},
		"health": {summary: "probe /health, for watchdogs and monitors", usage: "[--json] [flags]",
			example: "patchd health || patchd restart", common: where(), run: runHealth},
		"version": {summary: "print the version (also patchd --version)", usage: "",
			example: "patchd version", run: runVersion},
		"send": {summary: "submit a patch (FILE or - for stdin) to the running daemon", usage: "[--wait[=DURATION]] [--dry-run] [--json] [flags] FILE|-",
			example: "patchd send --wait patch.json\ngit diff | patchd send --dry-run -", common: where(), files: true, run: runSend},
		"patches": {summary: "the patch history: list, show, revert, drop, prune, watch", usage: "list|show ID|revert ID|drop ID|prune|watch [flags]",
			example: "patchd patches list --state failed --limit 5\npatchd help patches list", common: where(), subs: patchesSubs(), run: runPatches},
		"token": {summary: "print the webhook bearer token (--rotate: a new one, in force at once)", usage: "[--rotate] [--json] [flags]",
			example: "curl -H \"Authorization: Bearer $(patchd token)\" http://127.0.0.1:5555/patches", common: where("no-auth"), run: runToken},
		"mcp": {summary: "serve MCP on stdin/stdout through the workspace's daemon (started if none runs)", usage: "[flags]",
			example: "claude mcp add patchd -- patchd mcp --workspace \"$PWD\"", everyCommon: true, run: runMCP},
		"service": {summary: "print a PM2, systemd or launchd definition that runs patchd", usage: "pm2|systemd|launchd [--out DIR] [flags]",
			example: "patchd service systemd --out ~/.config/systemd/user --port 5555", everyCommon: true, args: []string{"pm2", "systemd", "launchd"}, run: runService},
		"gateway": {summary: "serve the API over NATS JetStream for runners of many workspaces (foreground)", usage: "--nats URL|--embedded-nats [--workspaces a,b] [flags]",
			example: "patchd gateway --embedded-nats --workspaces web,api --port 5555\npatchd gateway --nats nats://10.0.0.5:4222 --replicas 3", common: gatewayCommon, run: runGateway},
		"completion": {summary: "print a shell completion script: bash, zsh or fish", usage: "bash|zsh|fish",
			example: "source <(patchd completion bash)     # in ~/.bashrc\npatchd completion zsh > \"${fpath[1]}/_patchd\"\npatchd completion fish > ~/.config/fish/completions/patchd.fish",
			args:    shells(), run: runCompletion},
		"help": {summary: "show a command's usage, its flags and an example", usage: "[COMMAND [SUBCOMMAND]]",
			example: "patchd help send\npatchd help patches list", run: runHelp},
		completeCommand: {hidden: true, run: runComplete},
	}
}

// Run dispatches args (without the program name) to a subcommand.
func Run(ctx context.Context, env *Env, args []string) error {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 {
		usage(env.Stdout)
		return quiet(ExitUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return runHelp(ctx, env, args[1:])
	case "-v", "-version", "--version":
		return runVersion(ctx, env, args[1:])
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		return unknownCommand(args[0])
	}
	return cmd.run(ctx, env, args[1:])
}

// unknownCommand refuses a command name in one line, with the closest
// command when there is one.
func unknownCommand(name string) error {
	if strings.HasPrefix(name, "-") {
		return exit(ExitUsage, "unknown flag %s before the command: flags follow it (patchd <command> %s); see 'patchd help'", name, name)
	}
	hint := ""
	if s := closest(name, commandNames()); s != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", s)
	}
	return exit(ExitUsage, "unknown command %q%s; see 'patchd help'", name, hint)
}

// commandNames are the commands a person can be offered, sorted.
func commandNames() []string {
	var names []string
	for n, c := range commands() {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "patchd receives code patches from AI agents over HTTP and applies them safely.")
	fmt.Fprintln(w, "\nUsage: patchd <command> [flags]\n\nCommands:")
	cmds := commands()
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'patchd help <command>' (or 'patchd <command> --help') for its flags and an example;")
	fmt.Fprintln(w, "'patchd --version' for the version. Every flag also reads PATCHD_<NAME>.")
}

// parse parses the common settings plus the command's own flags (added by
// extra) and returns the resolved configuration and remaining arguments.
// --help (or -h) prints the command's help and exits 0; a flag mistake is
// one line with the closest flag and where the help is, exit 2.
func parse(env *Env, name string, args []string, extra func(fs *flag.FlagSet)) (*config.Config, []string, error) {
	fs := flag.NewFlagSet("patchd "+name, flag.ContinueOnError)
	// The flag package would print the whole usage at every mistake.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if extra != nil {
		extra(fs)
	}
	own := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	f := config.Register(fs)
	// Flags may come before or after the positional arguments
	// (`patchd service pm2 --out dir`, `patchd send p.json --port 5566`).
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, help(env, name, positional, fs, own)
			}
			return nil, nil, flagError(name, positional, fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	cfg, err := f.Load(env.Getenv)
	if err != nil {
		// A config file another user could have written is not a usage
		// mistake: the command line is right, the file is not safe.
		var unsafe *fsutil.UnsafeError
		if errors.As(err, &unsafe) {
			return nil, nil, exit(ExitFailed, "%v", err)
		}
		return nil, nil, exit(ExitUsage, "%v", err)
	}
	return cfg, positional, nil
}

// noArgs refuses stray positional arguments, which are usually a mistyped flag.
func noArgs(name string, rest []string) error {
	if len(rest) > 0 {
		return exit(ExitUsage, "%s: unexpected argument %q", name, strings.Join(rest, " "))
	}
	return nil
}
