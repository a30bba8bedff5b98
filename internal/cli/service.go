package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchd/patchd/internal/service"
)

// runService is `patchd service pm2|systemd|launchd`: print (or with --out,
// write) a definition that runs `patchd run` with the given flags.
func runService(ctx context.Context, env *Env, args []string) error {
	var out, name, path string
	vars := map[string]string{}
	cfg, rest, err := parse(env, "service", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "write the files into this directory instead of printing them")
		fs.StringVar(&name, "name", service.DefaultName, "service name")
		fs.StringVar(&path, "path", "", "PATH for patchd and the checks it runs (default: the PATH in effect now; \"none\" leaves the supervisor's own)")
		fs.Func("env", "KEY=VALUE set in patchd's environment (repeatable); checks see it only if the config file passes it", func(kv string) error {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("want KEY=VALUE, not %q", kv)
			}
			vars[k] = v
			return nil
		})
	})
	if err != nil {
		return err
	}
	// Checks find their toolchain through patchd's PATH, and a
	// supervisor's own is short (under launchd every `go` check failed
	// with "go: not found"): the definition carries the PATH of the shell
	// that generates it unless told otherwise.
	if p, ok := vars["PATH"]; ok {
		path = p
		delete(vars, "PATH")
	}
	switch path {
	case "":
		path = env.Getenv("PATH")
	case "none":
		path = ""
	}
	if len(rest) != 1 {
		return exit(ExitUsage, "service: want one of pm2, systemd, launchd")
	}
	exe, err := filepath.Abs(env.Exe)
	if err != nil {
		return exit(ExitFailed, "service: %v", err)
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		fmt.Fprintf(env.Stderr, "patchd: warning: %s is a temporary `go run` build; install patchd (go install ./cmd/patchd) and run `patchd service` from there\n", exe)
	}
	// The daemon runs with every setting resolved here that differs from
	// its default, from the settings table (config.Args), paths absolute.
	spec := service.Spec{
		Name: name, Exe: exe, Args: cfg.Args(), Workspace: cfg.Workspace,
		StateDir: cfg.StateDir, DrainTimeout: cfg.DrainTimeout, Env: vars, Path: path,
	}
	var files [][2]string // name, content
	switch rest[0] {
	case "pm2":
		s, err := service.PM2(spec)
		if err != nil {
			return exit(ExitFailed, "service pm2: %v", err)
		}
		files = append(files, [2]string{"ecosystem.config.js", s})
	case "systemd":
		svc, sock, err := service.Systemd(spec)
		if err != nil {
			return exit(ExitFailed, "service systemd: %v", err)
		}
		files = append(files, [2]string{name + ".service", svc}, [2]string{name + ".socket", sock})
	case "launchd":
		s, err := service.Launchd(spec)
		if err != nil {
			return exit(ExitFailed, "service launchd: %v", err)
		}
		files = append(files, [2]string{"dev.patchd." + name + ".plist", s})
	default:
		return exit(ExitUsage, "service: unknown supervisor %q: want pm2, systemd or launchd", rest[0])
	}
	if out == "" {
		for i, f := range files {
			if i > 0 {
				fmt.Fprintln(env.Stdout)
			}
			fmt.Fprint(env.Stdout, f[1])
		}
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return exit(ExitFailed, "service: %v", err)
	}
	for _, f := range files {
		path := filepath.Join(out, f[0])
		if err := os.WriteFile(path, []byte(f[1]), 0o644); err != nil {
			return exit(ExitFailed, "service: %v", err)
		}
		fmt.Fprintln(env.Stdout, path)
	}
	return nil
}
