// Command patchd receives code patches from AI agents over HTTP and applies
// them safely to a workspace. See the README for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/patchd/patchd/internal/cli"
	"github.com/patchd/patchd/internal/sandbox"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
		// patchd re-executed to confine a check, then become it.
		err := sandbox.Main(os.Args[2:])
		fmt.Fprintf(os.Stderr, "patchd: %v\n", err)
		os.Exit(sandbox.ExitCode)
	}
	// The console may go away under a running daemon (a closed terminal, a
	// supervisor's log pipe, a restart's predecessor): a write to it should
	// fail, not kill the process. Notify, not Ignore: an ignored signal
	// stays ignored in every program patchd starts (checks, git), and a
	// pipeline in a check would no longer end at a closed pipe.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "patchd: %s: shutting down gracefully (send it again to exit at once)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "patchd: second %s: exiting now\n", s)
		os.Exit(1)
	}()

	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	env := &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Exe: exe}
	err = cli.Run(ctx, env, os.Args[1:])
	cancel()
	if err == nil {
		return
	}
	code := cli.ExitFailed
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			os.Exit(code)
		}
	}
	fmt.Fprintf(os.Stderr, "patchd: %v\n", err)
	os.Exit(code)
}
