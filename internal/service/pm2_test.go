package service

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// pm2App is the part of an ecosystem app the checks read.
type pm2App struct {
	Name                   string            `json:"name"`
	Script                 string            `json:"script"`
	Args                   []string          `json:"args"`
	Cwd                    string            `json:"cwd"`
	Interpreter            string            `json:"interpreter"`
	ExecMode               string            `json:"exec_mode"`
	Instances              int               `json:"instances"`
	Autorestart            bool              `json:"autorestart"`
	Watch                  bool              `json:"watch"`
	StopExitCodes          []int             `json:"stop_exit_codes"`
	MinUptime              string            `json:"min_uptime"`
	MaxRestarts            int               `json:"max_restarts"`
	ExpBackoffRestartDelay int               `json:"exp_backoff_restart_delay"`
	WaitReady              bool              `json:"wait_ready"`
	ListenTimeout          int64             `json:"listen_timeout"`
	KillTimeout            int64             `json:"kill_timeout"`
	Env                    map[string]string `json:"env"`
}

// TestPM2Node loads each ecosystem file with Node, as PM2 does, and checks
// what Node sees: a syntax or quoting mistake fails here.
func TestPM2Node(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			js, err := PM2(tc.spec)
			if err != nil {
				t.Fatalf("PM2: %v", err)
			}
			path := filepath.Join(t.TempDir(), "ecosystem.config.js")
			if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(node, "-e", "const c=require(process.argv[1]); console.log(JSON.stringify(c))", path).Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("node could not load the file: %v\n%s\n%s", err, stderr, js)
			}
			var cfg struct{ Apps []pm2App }
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("node printed %s: %v", out, err)
			}
			if len(cfg.Apps) != 1 {
				t.Fatalf("apps = %d, want 1", len(cfg.Apps))
			}
			app := cfg.Apps[0]
			p, err := resolve(tc.spec)
			if err != nil {
				t.Fatal(err)
			}

			if app.Name != p.name || app.Script != tc.spec.Exe || app.Cwd != tc.spec.Workspace {
				t.Errorf("name, script, cwd = %q, %q, %q, want %q, %q, %q", app.Name, app.Script, app.Cwd, p.name, tc.spec.Exe, tc.spec.Workspace)
			}
			if want := append([]string{"run"}, tc.spec.Args...); !slices.Equal(app.Args, want) {
				t.Errorf("args = %q, want %q", app.Args, want)
			}
			if app.Interpreter != "none" || app.ExecMode != "fork" || app.Instances != 1 {
				t.Errorf("interpreter, exec_mode, instances = %q, %q, %d, want none, fork, 1", app.Interpreter, app.ExecMode, app.Instances)
			}
			if !app.Autorestart || app.Watch {
				t.Errorf("autorestart, watch = %v, %v, want true, false", app.Autorestart, app.Watch)
			}
			for _, code := range []int{exitNoPort, exitAlreadyRunning, exitStopped} {
				if !slices.Contains(app.StopExitCodes, code) {
					t.Errorf("stop_exit_codes = %v, want it to hold %d", app.StopExitCodes, code)
				}
			}
			// PM2 reports a death by signal as 0: a kill -9 must be restarted.
			if slices.Contains(app.StopExitCodes, 0) {
				t.Errorf("stop_exit_codes = %v, want no 0 (PM2's code for a death by signal)", app.StopExitCodes)
			}
			if drainMS := p.drain.Milliseconds(); app.KillTimeout < drainMS+5000 {
				t.Errorf("kill_timeout = %d ms, want at least the drain (%d ms) + 5000", app.KillTimeout, drainMS)
			}
			if !app.WaitReady || app.ListenTimeout <= p.ready.Milliseconds()-readyMargin.Milliseconds() {
				t.Errorf("wait_ready, listen_timeout = %v, %d, want true and more than patchd's start timeout", app.WaitReady, app.ListenTimeout)
			}
			if app.MinUptime != "5s" || app.ExpBackoffRestartDelay != 100 || app.MaxRestarts < 1 {
				t.Errorf("min_uptime, exp_backoff_restart_delay, max_restarts = %q, %d, %d", app.MinUptime, app.ExpBackoffRestartDelay, app.MaxRestarts)
			}
			if len(app.Env) != len(specEnv(tc.spec)) {
				t.Errorf("env = %q, want %q", app.Env, specEnv(tc.spec))
			}
			for k, v := range specEnv(tc.spec) {
				if app.Env[k] != v {
					t.Errorf("env[%s] = %q, want %q", k, app.Env[k], v)
				}
			}
		})
	}
}

func TestJSString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{in: "plain", want: `"plain"`},
		{in: `a "b" \c`, want: `"a \"b\" \\c"`},
		{in: "</script> & <", want: `"</script> & <"`},
		{in: "line\u2028sep", want: `"line\u2028sep"`},
		{in: "${x} `y`", want: "\"${x} `y`\""},
	}
	for _, tt := range tests {
		if got := jsString(tt.in); got != tt.want {
			t.Errorf("jsString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
