package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppliedRecordDoesNotFit: the state dir's disk fills up while a patch
// is being applied (a check fills it, leaving 16 KiB), so that the record
// of the patch as applied, which carries its diff, does not fit. The patch
// waits as queued with the cause, its file as before, instead of staying
// applying; once there is room it is applied, once.
func TestAppliedRecordDoesNotFit(t *testing.T) {
	t.Parallel()
	state := mountTmpfs(t, "1m")
	f := newFaultEnv(t, state)
	dir := t.TempDir()
	filler, once := filepath.Join(state, "filler"), filepath.Join(dir, "filled")
	cfg, _ := json.Marshal(map[string]any{"checks": []map[string]any{{"name": "fill",
		"command": fmt.Sprintf(`[ -e '%s' ] && exit 0; : > '%[1]s'; cat /dev/zero > '%s' 2>/dev/null; truncate -s -16K '%[2]s'`, once, filler)}}})
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, cfg, 0o600)
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "line %d x\n", i)
	}
	orig := b.String()
	os.WriteFile(filepath.Join(f.ws, "a.txt"), []byte(orig), 0o644)
	pid, r := f.start("--config", cfgPath)
	if r.code != 0 || pid == 0 {
		t.Fatalf("start: %s", r)
	}
	st, _ := f.status()
	f.cl = f.client(st.Address)
	code, _, err := f.cl.do("POST", "/webhook", []byte(`{"id":"D1","role":"r","target_file":"a.txt","patch":{"pattern":"x","replacement":"xy"}}`))
	if err != nil || code != 202 {
		t.Fatalf("POST D1 = %d, %v", code, err)
	}
	f.acked = append(f.acked, "D1")
	read := func() string {
		data, _ := os.ReadFile(filepath.Join(f.ws, "a.txt"))
		return string(data)
	}
	var p patchState
	waitFor(t, 10*time.Second, "D1 to wait as queued with the cause", func() bool {
		p, _ = f.cl.patch(t, "D1")
		if p.State != "queued" && p.State != "applying" {
			t.Fatalf("D1 = %s %q, want it to wait as queued", p.State, p.Error)
		}
		return p.State == "queued" && strings.Contains(p.Error, "no space left on device")
	})
	if got := read(); got != orig {
		t.Errorf("a.txt while D1 waits (%q) is %d bytes, want its content before the patch", p.Error, len(got))
	}
	os.Remove(filler)
	waitFor(t, 20*time.Second, "D1 applied once there is room", func() bool {
		p, _ = f.cl.patch(t, "D1")
		return p.State == "applied" || p.State == "failed"
	})
	if want := strings.ReplaceAll(orig, "x", "xy"); p.State != "applied" || read() != want {
		t.Errorf("D1 after space came back = %s %q, a.txt %d bytes; want applied once (%d bytes)", p.State, p.Error, len(read()), len(want))
	}
}
