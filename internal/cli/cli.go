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
}

type command struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"run":     {"run the daemon in the foreground (for PM2, systemd, launchd, a terminal)", runRun},
		"start":   {"start the daemon in the background; exit 0 once it answers /health", runStart},
		"stop":    {"stop the running daemon gracefully and wait until it is gone", runStop},
		"restart": {"replace the running daemon with the binary on disk, without dropping a request", runRestart},
		"status":  {"show whether the daemon runs, its pid, address and uptime", runStatus},
		"health":  {"probe /health, for watchdogs and monitors", runHealth},
		"version": {"print the version", runVersion},
		"send":    {"submit a patch (FILE or - for stdin) to the running daemon", runSend},
		"patches": {"the patch history: list, show ID, revert ID, drop ID (a queued patch, also with no daemon running), prune (retention now, --dry-run), watch (events as they happen)", runPatches},
		"token":   {"print the webhook bearer token (--rotate: a new one, in force at once)", runToken},
		"mcp":     {"serve MCP on stdin/stdout through the workspace's daemon (started if none runs)", runMCP},
		"service": {"print a PM2, systemd or launchd definition that runs patchd", runService},
	}
}

// Run dispatches args (without the program name) to a subcommand.
func Run(ctx context.Context, env *Env, args []string) error {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return quiet(ExitUsage)
		}
		return nil
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		return exit(ExitUsage, "unknown command %q (run 'patchd help' for the list)", args[0])
	}
	return cmd.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "patchd receives code patches from AI agents over HTTP and applies them safely.")
	fmt.Fprintln(w, "\nUsage: patchd <command> [flags]\n\nCommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'patchd <command> -h' for its flags. Every flag also reads PATCHD_<NAME>.")
}

// parse parses the common settings plus the command's own flags (added by
// extra) and returns the resolved configuration and remaining arguments.
func parse(env *Env, name string, args []string, extra func(fs *flag.FlagSet)) (*config.Config, []string, error) {
	fs := flag.NewFlagSet("patchd "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if extra != nil {
		extra(fs)
	}
	f := config.Register(fs)
	// Flags may come before or after the positional arguments
	// (`patchd service pm2 --out dir`, `patchd send p.json --port 5566`).
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, quiet(ExitOK)
			}
			return nil, nil, quiet(ExitUsage)
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
