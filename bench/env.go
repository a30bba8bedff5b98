package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench holds what every scenario needs.
type bench struct {
	opts    options
	root    string // repository root
	tmp     string // removed at the end
	patchd  string // built binary
	ceiling string // built binary
	flask   flaskEnv
	machine machine
	procs   *procSet
	seq     int // numbers workspaces

	// baseline is the -baseline binary, "" without; baseLabel names it
	// in the report.
	baseline, baseLabel string
}

// moduleRoot is the directory of the go.mod of the current module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from the patchd repository (go run ./bench): no go.mod here")
	}
	return filepath.Dir(mod), nil
}

func (b *bench) build(ctx context.Context) error {
	bin := filepath.Join(b.tmp, "bin")
	b.patchd = filepath.Join(bin, "patchd")
	b.ceiling = filepath.Join(bin, "ceiling")
	builds := []struct{ out, pkg string }{{b.patchd, "./cmd/patchd"}, {b.ceiling, "./bench/ceiling"}}
	if b.opts.patchdBin != "" {
		abs, err := filepath.Abs(b.opts.patchdBin)
		if err != nil {
			return err
		}
		b.patchd, builds = abs, builds[1:]
	}
	if b.opts.baseline != "" {
		abs, err := filepath.Abs(b.opts.baseline)
		if err != nil {
			return err
		}
		if st, err := os.Stat(abs); err != nil {
			return fmt.Errorf("-baseline: %w", err)
		} else if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("-baseline: %s is not an executable file", abs)
		}
		b.baseline, b.baseLabel = abs, binLabel(ctx, abs)
	}
	for _, t := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", t.pkg, err, out)
		}
	}
	return nil
}

// binLabel names a patchd binary: what `bin version` prints, or the file
// name if it prints nothing, and the commit it was built from when the
// build recorded one (go build -buildvcs).
func binLabel(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	label := "`" + filepath.Base(bin) + "`"
	c := exec.CommandContext(ctx, bin, "version")
	c.Env = cleanEnv()
	if out, err := c.Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" && !strings.Contains(v, "\n") {
			label = "`" + v + "`"
		}
	}
	if info, err := buildinfo.ReadFile(bin); err == nil {
		var rev string
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			label += ", commit " + rev[:min(len(rev), 7)]
			if modified {
				label += " with uncommitted changes"
			}
		}
	}
	return label
}

// workspace makes a fresh empty workspace directory.
func (b *bench) workspace(name string) string {
	b.seq++
	dir := filepath.Join(b.tmp, fmt.Sprintf("ws%03d-%s", b.seq, name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	return dir
}

// settle removes the workspaces of finished steps and flushes the page
// cache to disk, so that the next measurement does not pay for the last
// one's writeback (on ext4 every fsync commits the file system's journal,
// and with it whatever metadata is pending).
func (b *bench) settle() {
	b.procs.mu.Lock()
	live := maps.Clone(b.procs.workspaces)
	b.procs.mu.Unlock()
	entries, _ := os.ReadDir(b.tmp)
	for _, e := range entries {
		p := filepath.Join(b.tmp, e.Name())
		if _, running := live[p]; e.IsDir() && strings.HasPrefix(e.Name(), "ws") && !running {
			os.RemoveAll(p)
		}
	}
	syscall.Sync()
}

// machine describes where the figures were taken.
type machine struct {
	CPU       string
	Cores     int
	MemoryGiB float64
	Kernel    string
	Go        string
	FS        string // file system of the temporary workspaces
	Commit    string // of the patchd measured
}

func readMachine(root, tmp string) machine {
	m := machine{Cores: runtime.NumCPU(), CPU: "unknown", Kernel: "unknown", FS: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(data))
	}
	m.Go = runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	m.Commit = "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		// Changes under cmd/ and internal/ are in the binary; others are not.
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "cmd", "internal").Output(); err == nil {
			for line := range strings.SplitSeq(string(st), "\n") {
				if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[len(f)-1], ".go") && !strings.HasSuffix(f[len(f)-1], "_test.go") {
					m.Commit += " with uncommitted changes"
					break
				}
			}
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(tmp, &st) == nil {
		m.FS = fsName(int64(st.Type))
	}
	return m
}

func fsName(magic int64) string {
	switch magic {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs (fsync is free: durable figures are not meaningful)"
	case 0x794c7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	}
	return fmt.Sprintf("file system 0x%x", magic)
}

//go:embed flask_app.py
var flaskApp []byte

// flaskEnv is the Flask reference: a python with Flask, or why there is
// none.
type flaskEnv struct {
	python  string // "" when Flask is not available
	version string // "Python x.y.z, Flask a.b.c"
	app     string // path of flask_app.py
	note    string
}

// findFlask looks for a python3 that imports flask and, as root with
// apt-get, installs Debian's python3-flask if there is none.
func findFlask(ctx context.Context, tmp string) flaskEnv {
	app := filepath.Join(tmp, "flask_app.py")
	if err := os.WriteFile(app, flaskApp, 0o644); err != nil {
		return flaskEnv{note: err.Error()}
	}
	try := func() flaskEnv {
		for _, py := range []string{"python3", "/usr/bin/python3"} {
			path, err := exec.LookPath(py)
			if err != nil {
				continue
			}
			out, err := exec.CommandContext(ctx, path, "-c",
				"import sys, flask, importlib.metadata as m; print('Python %s, Flask %s' % (sys.version.split()[0], m.version('flask')))").Output()
			if err == nil {
				return flaskEnv{python: path, version: strings.TrimSpace(string(out)), app: app}
			}
		}
		return flaskEnv{}
	}
	if f := try(); f.python != "" {
		return f
	}
	if os.Geteuid() != 0 {
		return flaskEnv{note: "Flask is not installed and installing python3-flask needs root: run `apt-get install -y python3-flask` as root, then this command again"}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return flaskEnv{note: "Flask is not installed and there is no apt-get to install python3-flask with"}
	}
	logf("Flask not found: apt-get update && apt-get install -y python3-flask")
	actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var log bytes.Buffer
	for _, args := range [][]string{{"update"}, {"install", "-y", "python3-flask"}} {
		cmd := exec.CommandContext(actx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Run(); err != nil {
			return flaskEnv{note: fmt.Sprintf("apt-get %s failed (%v): %s", args[0], err, lastLine(log.String()))}
		}
	}
	if f := try(); f.python != "" {
		return f
	}
	return flaskEnv{note: "python3-flask was installed but no python3 imports flask"}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// goBenchmarks runs the store's and the patch package's go benchmarks and
// returns their result lines.
func (b *bench) goBenchmarks(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run=^$", "-bench=.", "./internal/store", "./internal/patch", "./internal/worker")
	cmd.Dir = b.root
	// The store benchmarks fsync in TMPDIR: the same disk as the rest.
	cmd.Env = append(os.Environ(), "TMPDIR="+b.tmp)
	out, err := cmd.CombinedOutput()
	var lines []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			lines = append(lines, strings.TrimRight(line, " \t"))
		}
	}
	if err != nil {
		return lines, fmt.Errorf("go test -bench: %v: %s", err, lastLine(string(out)))
	}
	return lines, nil
}
