package main

import (
	"encoding/json"
	"net/http"
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

// TestAiderTextWebhook: a webhook POST whose patch is aider SEARCH/REPLACE
// text lands every block, on two files and a new one, through the real
// daemon; a block cut short is refused at intake naming patch.text and its
// line, and a block naming a path outside the workspace is refused naming
// it, writing nothing.
func TestAiderTextWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	os.MkdirAll(filepath.Join(e.ws, "src"), 0o755)
	app := "def greet(name):\n    return 'hello ' + name\n\n\ndef main():\n    print(greet('you'))\n"
	os.WriteFile(filepath.Join(e.ws, "src", "app.py"), []byte(app), 0o644)
	os.WriteFile(filepath.Join(e.ws, "README.md"), []byte("Says hello.\n"), 0o644)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	cl := e.client(st.Address)
	post := func(id, text string) (int, string) {
		body, _ := json.Marshal(map[string]any{"id": id, "role": "feature", "patch": map[string]string{"text": text}})
		code, resp, err := cl.do("POST", "/webhook", body)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		return code, string(resp)
	}

	text := "I'll say hi, and add a helper.\n\nsrc/app.py\n```python\n<<<<<<< SEARCH\n    return 'hello ' + name\n=======\n    return 'hi ' + name\n>>>>>>> REPLACE\n```\n\n" +
		"```python\n<<<<<<< SEARCH\n    print(greet('you'))\n=======\n    print(greet('you').upper())\n>>>>>>> REPLACE\n```\n\n" +
		"README.md\n```\n<<<<<<< SEARCH\nSays hello.\n=======\nSays hi.\n>>>>>>> REPLACE\n```\n\n" +
		"src/util.py\n```python\n<<<<<<< SEARCH\n=======\ndef shout(s):\n    return s.upper()\n>>>>>>> REPLACE\n```\n"
	if code, resp := post("AIDER1", text); code != http.StatusAccepted {
		t.Fatalf("POST AIDER1 = %d %s, want 202", code, resp)
	}
	waitFor(t, 10*time.Second, "AIDER1 to be applied", func() bool {
		p, _ := cl.patch(t, "AIDER1")
		if p.State == "failed" {
			t.Fatalf("AIDER1 failed: %+v", p)
		}
		return p.State == "applied"
	})
	for name, want := range map[string]string{
		"src/app.py":  "def greet(name):\n    return 'hi ' + name\n\n\ndef main():\n    print(greet('you').upper())\n",
		"README.md":   "Says hi.\n",
		"src/util.py": "def shout(s):\n    return s.upper()\n",
	} {
		if data, _ := os.ReadFile(filepath.Join(e.ws, name)); string(data) != want {
			t.Errorf("%s = %q, want %q", name, data, want)
		}
	}

	code, resp := post("AIDER2", "src/app.py\n<<<<<<< SEARCH\n    return 'hi ' + name\n")
	if code != http.StatusBadRequest || !strings.Contains(resp, "Invalid field: patch.text: line 2: <<<<<<< SEARCH without a ======= line") {
		t.Errorf("POST of a block cut short = %d %s, want 400 naming patch.text and line 2", code, resp)
	}
	code, resp = post("AIDER3", "README.md\n<<<<<<< SEARCH\nSays hi.\n=======\nSays ho.\n>>>>>>> REPLACE\n../outside.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n")
	if code != http.StatusBadRequest || !strings.Contains(resp, "outside.py") {
		t.Errorf("POST of a block outside the workspace = %d %s, want 400 naming the path", code, resp)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(e.ws), "outside.py")); !os.IsNotExist(err) {
		t.Errorf("a block outside the workspace was written: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(e.ws, "README.md")); string(data) != "Says hi.\n" {
		t.Errorf("README.md = %q after refused patches, want it unchanged", data)
	}
}
