package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFormatsEndToEnd: the formats agents write, through the real daemon:
// a dry run changes nothing, an apply_patch spanning files lands whole, and
// a search that does not match is refused with the closest lines.
func TestFormatsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.MkdirAll(filepath.Join(e.ws, "src"), 0o755)
	app := "def greet(name):\n    return 'hello ' + name\n\n\ndef main():\n    print(greet('you'))\n"
	os.WriteFile(filepath.Join(e.ws, "src", "app.py"), []byte(app), 0o644)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	send := func(args []string, block map[string]any) result {
		body, _ := json.Marshal(block)
		cmd := e.command(append([]string{"send"}, args...)...)
		cmd.Stdin = strings.NewReader(string(body))
		return runCmd(t, cmd)
	}
	ap := "*** Begin Patch\n*** Update File: src/app.py\n@@ def greet(name):\n-    return 'hello ' + name\n+    return 'hello, ' + name\n" +
		"*** Add File: src/util.py\n+def shout(s):\n+    return s.upper()\n*** End Patch\n"
	block := map[string]any{"id": "AP1", "role": "feature", "description": "comma and shout", "patch": map[string]string{"apply_patch": ap}}

	r := send([]string{"-", "--dry-run"}, block)
	if r.code != 0 || !strings.Contains(r.stdout, "+    return 'hello, ' + name") || !strings.Contains(r.stdout, "+++ b/src/util.py") {
		t.Fatalf("send --dry-run: %s, want the diff of both files", r)
	}
	if _, err := os.Stat(filepath.Join(e.ws, "src", "util.py")); !os.IsNotExist(err) {
		t.Fatalf("a dry run created src/util.py")
	}

	if r := send([]string{"-"}, block); r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	waitFor(t, 10*time.Second, "the apply_patch to land", func() bool {
		data, _ := os.ReadFile(filepath.Join(e.ws, "src", "util.py"))
		return string(data) == "def shout(s):\n    return s.upper()\n"
	})
	data, _ := os.ReadFile(filepath.Join(e.ws, "src", "app.py"))
	if !strings.Contains(string(data), "return 'hello, ' + name") {
		t.Errorf("src/app.py = %q, want updated", data)
	}

	bad := map[string]any{"id": "SR1", "role": "fix", "target_file": "src/app.py",
		"patch": map[string]string{"search": "def greet(nam):\n    return 'hello ' + name", "replace": "x"}}
	r = send([]string{"-", "--dry-run"}, bad)
	if r.code != 1 || !strings.Contains(r.stderr, "not found in src/app.py") || !strings.Contains(r.stderr, "1| def greet(name):") {
		t.Errorf("dry run of a search that does not match: %s, want a refusal quoting the closest lines with numbers", r)
	}
	if r := send([]string{"-"}, bad); r.code != 0 {
		t.Fatalf("send: %s", r)
	}
	waitFor(t, 10*time.Second, "SR1 to fail", func() bool {
		return strings.Contains(e.run("patches", "show", "SR1").stdout, "state: failed")
	})
	if show := e.run("patches", "show", "SR1"); !strings.Contains(show.stdout, "closest") {
		t.Errorf("patches show SR1: %s, want the closest lines in the error", show)
	}
}
