//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAnswersNameNoMachinePath: what the daemon answers about a patch (a
// refusal at intake, a preview's refusal, a failed patch's record) has
// its code and names no path of this machine: not the workspace's, not
// the state dir's. --git in a workspace outside any repository failed
// patches with "find the repository of the workspace /tmp/…", and a
// target in the state dir was refused naming the state dir's full path.
func TestAnswersNameNoMachinePath(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.ws, "a.txt"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := e.command("start", "--port", "0", "--git")
	// No repository holds the workspace, whatever holds the test's
	// temporary directory.
	cmd.Env = append(cmd.Env, "GIT_CEILING_DIRECTORIES="+filepath.Dir(e.ws))
	if r := runCmd(t, cmd); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, r := e.status()
	if !st.Running {
		t.Fatalf("status: %s", r)
	}
	c := e.client(st.Address)
	paths := []string{e.ws, e.stateDir()}
	if real, err := filepath.EvalSymlinks(e.ws); err == nil {
		paths = append(paths, real)
	}
	check := func(what string, body []byte, wantCode string) {
		t.Helper()
		for _, p := range paths {
			if strings.Contains(string(body), p) {
				t.Errorf("%s = %s, which names the machine's path %s", what, body, p)
			}
		}
		if !strings.Contains(string(body), `"code":"`+wantCode+`"`) {
			t.Errorf("%s = %s, want code %s", what, body, wantCode)
		}
	}

	code, body, err := c.do("POST", "/webhook", []byte(`{"id":"T1","role":"attack","target_file":".patchd/token","patch":{"search":"","replace":"x"}}`))
	if err != nil || code != 400 {
		t.Fatalf("POST /webhook of .patchd/token = %d %s, %v; want 400", code, body, err)
	}
	check("the refusal of .patchd/token", body, "path_protected")

	block := []byte(`{"id":"G1","role":"fix","target_file":"a.txt","patch":{"pattern":"seed","replacement":"grown"}}`)
	code, body, err = c.do("POST", "/patches/preview", block)
	if err != nil || code/100 != 4 {
		t.Fatalf("POST /patches/preview = %d %s, %v; want a refusal", code, body, err)
	}
	check("the preview's refusal", body, "git_failed")

	if code, body, err := c.do("POST", "/webhook", block); err != nil || code != 202 {
		t.Fatalf("POST /webhook = %d %s, %v; want 202", code, body, err)
	}
	waitFor(t, 20*time.Second, "G1 to fail", func() bool {
		p, _ := c.patch(t, "G1")
		return p.State == "failed"
	})
	_, body, err = c.do("GET", "/patches/G1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Error, Code string }
	json.Unmarshal(body, &p)
	if !strings.Contains(p.Error, "not a git repository") {
		t.Errorf("G1's error = %q, want git's", p.Error)
	}
	check("G1", body, "git_failed")
}
