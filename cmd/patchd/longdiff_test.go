package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestShowLongDiff: `patchd patches show` prints the whole diff of a patch
// whose diff the API answers in parts (GET /patches/{id}?diff_offset=).
func TestShowLongDiff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, r := e.start(); r.code != 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := e.status()
	var content strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&content, "line %05d \"quoted\" \\ back\n", i)
	}
	body, _ := json.Marshal(map[string]any{"id": "long", "role": "r", "target_file": "long.txt",
		"patch": map[string]any{"search": "", "replace": content.String()}})
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + e.token()}
	if code, b := (hreq{method: "POST", path: "/webhook?wait=20s", headers: h, body: string(body)}).send(t, st.Address); code != 200 || !strings.Contains(b, "diff_offset=") {
		t.Fatalf("submit and wait: %d %.300s", code, b)
	}
	r := e.run("patches", "show", "long")
	if r.code != 0 {
		t.Fatalf("patches show: %s", r)
	}
	for _, want := range []string{"+line 00000 ", "+line 01999 ", "+line 03999 \"quoted\" \\ back\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("patches show lacks %q (%d bytes printed)", want, len(r.stdout))
		}
	}
	if n := strings.Count(r.stdout, "\n+line "); n != 4000 {
		t.Errorf("patches show printed %d added lines, want 4000", n)
	}
}
