package deptest

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/patchd/patchd/internal/"

// lower are the packages below every door: whatever the way in (HTTP,
// MCP, the dashboard, NATS), they stay the same, so none of them may pull
// in a transport, at any depth.
var lower = []string{"store", "worker", "patch", "workspace"}

// doors are the ways in: each a thin adapter over api.Service, so none
// of them depends, at any depth, on what the service stands on (below).
var doors = []string{"server", "mcpserver", "apiclient", "dashboard"}

// behindService are the packages a door reaches only through api.Service.
var behindService = append(slices.Clone(lower), "patchsvc", "daemon")

// transports are what the lower packages may not depend on: a package
// matches one that it equals or lies under.
var transports = []struct{ prefix, why string }{
	{"net/http", "HTTP belongs to internal/server, a door"},
	{"github.com/modelcontextprotocol", "an MCP SDK belongs to the MCP door"},
	{"github.com/mark3labs/mcp-go", "an MCP SDK belongs to the MCP door"},
	{"github.com/prometheus", "metrics belong to internal/metrics, which times patches from the service's events"},
	{"github.com/nats-io", "NATS belongs to the gateway and the runner"},
}

// fileSystem is what patch, and every patchd package it imports, may not
// import itself: patch plans in memory, and its caller reads and writes
// the files (through workspace). The standard library's own use of os
// (fmt, regexp and encoding/json import it) does not count: the rule is
// about what patchd's code calls, so it reads each package's imports, not
// its dependencies.
var fileSystem = []string{"os", "io/ioutil"}

// noDirect are imports a package may not make itself (its dependencies
// may): the CLI reads the HTTP API's answers as api types, not through
// the server that writes them; the worker takes its checks and setting
// names from its Options, not from config, the layer that reads flags.
var noDirect = []struct{ from, to, why string }{
	{"cli", "server", "the CLI reads the HTTP API's answers as api types"},
	{"worker", "config", "the worker takes its checks and setting names from its Options"},
}

// onlyIn are imports only one patchd package may make itself: the others
// take what it builds as plain Go and net/http interfaces.
var onlyIn = []struct {
	prefix string
	pkgs   []string // the packages that may (and those under them)
	why    string
}{
	{"github.com/prometheus", []string{"metrics"}, "the Prometheus client lives in internal/metrics; the server takes its handler and its RequestObserver"},
	{"github.com/nats-io", []string{"jetq", "gateway", "natsrun", "natsconf", "natstest"}, "NATS lives in the gateway, the runner and their plumbing (jetq, natsconf; natstest, the scale-out tests); the others take an api.Service"},
}

// noNATS are the packages that depend on NATS at no depth (besides the
// lower ones, which depend on no transport): the doors the gateway
// reuses unchanged, the service and api, and the packages with fuzz
// targets (fuzzing instruments every dependency).
var noNATS = []string{"api", "server", "mcpserver", "dashboard", "apiclient", "patchsvc", "jsonscan", "pathmatch", "service"}

// platforms are the GOOS values the import graph is read for: files
// chosen by build constraints import different packages on each.
var platforms = []string{"linux", "darwin"}

// pkg is what go list -json says of a package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Error      *struct{ Err string }
}

// under reports whether path is prefix or lies under it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// TestDeps reads the import graph of the lower packages and of api, for
// each platform, and fails naming the chain of imports to each package a
// rule forbids.
func TestDeps(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph (go list): %v", err)
	}
	roots := slices.Concat(lower, []string{"api", "cli", "metrics", "daemon", "patchsvc", "jsonscan", "pathmatch", "service", "jetq", "gateway", "gatewayd"}, doors)
	for _, goos := range platforms {
		t.Run(goos, func(t *testing.T) {
			graph := list(t, goCmd, goos, roots)
			for _, root := range lower {
				chains := reach(graph, module+root)
				for _, dep := range slices.Sorted(maps.Keys(chains)) {
					chain := chains[dep]
					for _, tr := range transports {
						// Named where the chain enters it, not at each
						// package it holds.
						if under(dep, tr.prefix) && !under(chain[len(chain)-2], tr.prefix) {
							t.Errorf("%s depends on %s (%s): %s", root, dep, tr.why, strings.Join(chain, " → "))
						}
					}
				}
			}
			chains := reach(graph, module+"patch")
			for _, p := range slices.Sorted(maps.Keys(chains)) {
				if !strings.HasPrefix(p, module) {
					continue
				}
				chain := chains[p]
				for _, imp := range graph[p].Imports {
					for _, banned := range fileSystem {
						if under(imp, banned) {
							t.Errorf("%s imports %s, and patch plans in memory only: its caller reads and writes files (%s)", p, imp, strings.Join(slices.Concat(chain, []string{imp}), " → "))
						}
					}
				}
			}
			for _, door := range doors {
				chains := reach(graph, module+door)
				for _, p := range behindService {
					if chain, ok := chains[module+p]; ok {
						t.Errorf("%s (a door) depends on %s, and a door reaches it only through api.Service: %s", door, p, strings.Join(chain, " → "))
					}
				}
			}
			for _, r := range noDirect {
				if slices.Contains(graph[module+r.from].Imports, module+r.to) {
					t.Errorf("%s imports %s, and %s", r.from, r.to, r.why)
				}
			}
			for _, o := range onlyIn {
				for _, p := range slices.Sorted(maps.Keys(graph)) {
					if !strings.HasPrefix(p, module) || slices.ContainsFunc(o.pkgs, func(q string) bool { return under(p, module+q) }) {
						continue
					}
					for _, imp := range graph[p].Imports {
						if under(imp, o.prefix) {
							t.Errorf("%s imports %s, and only %s may: %s", p, imp, strings.Join(o.pkgs, ", "), o.why)
						}
					}
				}
			}
			for _, p := range noNATS {
				chains := reach(graph, module+p)
				for _, dep := range slices.Sorted(maps.Keys(chains)) {
					if chain := chains[dep]; under(dep, "github.com/nats-io") && !under(chain[len(chain)-2], "github.com/nats-io") {
						t.Errorf("%s depends on %s (NATS belongs to the gateway and the runner): %s", p, dep, strings.Join(chain, " → "))
					}
				}
			}
			chains = reach(graph, module+"api")
			for _, dep := range slices.Sorted(maps.Keys(chains)) {
				if !graph[dep].Standard && dep != module+"api" {
					t.Errorf("api depends on %s, and it imports the standard library only, so that every door can share its types: %s", dep, strings.Join(chains[dep], " → "))
				}
			}
		})
	}
}

// TestRulesMatch: the rules' prefixes match whole path elements.
func TestRulesMatch(t *testing.T) {
	for _, tt := range []struct {
		path, prefix string
		want         bool
	}{
		{"net/http", "net/http", true},
		{"net/http/httptest", "net/http", true},
		{"net/http/internal/ascii", "net/http", true},
		{"net/httpx", "net/http", false},
		{"net", "net/http", false},
		{"github.com/nats-io/nats.go", "github.com/nats-io", true},
		{"github.com/nats-iox/x", "github.com/nats-io", false},
		{"os/exec", "os", true},
		{"osx", "os", false},
	} {
		if got := under(tt.path, tt.prefix); got != tt.want {
			t.Errorf("under(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

// list runs go list -deps -json for the patchd packages roots on goos and
// returns every package of their graph by import path. A root that does
// not exist fails the test: a rule about it would pass without checking
// anything.
func list(t *testing.T, goCmd, goos string, roots []string) map[string]pkg {
	t.Helper()
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Error"}
	for _, r := range roots {
		args = append(args, module+r)
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Env = append(os.Environ(), "GOOS="+goos)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s (GOOS=%s): %v\n%s", strings.Join(args, " "), goos, err, stderr.String())
	}
	graph := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("read go list's output: %v", err)
		}
		graph[p.ImportPath] = p
	}
	for _, r := range roots {
		if p, ok := graph[module+r]; !ok || p.Error != nil {
			t.Fatalf("package %s (GOOS=%s) cannot be listed: %v; a rule names it, update the rule if it moved", module+r, goos, errOf(p))
		}
	}
	return graph
}

func errOf(p pkg) string {
	if p.Error == nil {
		return "not in go list's output"
	}
	return p.Error.Err
}

// reach returns every package root depends on, each with the chain of
// imports that leads there from root (the shortest one).
func reach(graph map[string]pkg, root string) map[string][]string {
	chains := map[string][]string{root: {root}}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range graph[p].Imports {
			if _, seen := chains[imp]; seen {
				continue
			}
			chains[imp] = append(slices.Clone(chains[p]), imp)
			queue = append(queue, imp)
		}
	}
	return chains
}
