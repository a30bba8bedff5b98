package main

import (
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// plantedRace is the start of a report of the race detector.
const plantedRace = `==================
WARNING: DATA RACE
Write at 0x00c000012345 by goroutine 7:
  github.com/patchd/patchd/internal/worker.(*Worker).drain()
`

// TestScanCrashes: the scan finds a race report, a panic and a fatal error,
// quoting the lines after it, and not a log line that mentions a panic.
func TestScanCrashes(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // the first line of each report
	}{
		{name: "race", data: "patchd: started\n" + plantedRace, want: []string{"WARNING: DATA RACE"}},
		{name: "panic", data: "{\"level\":\"INFO\"}\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:\n", want: []string{"panic: runtime error: index out of range"}},
		{name: "fatal", data: "fatal error: concurrent map writes\n", want: []string{"fatal error: concurrent map writes"}},
		{name: "two", data: plantedRace + strings.Repeat("  frame\n", 20) + "panic: boom\n", want: []string{"WARNING: DATA RACE", "panic: boom"}},
		{name: "json log line", data: `{"level":"ERROR","msg":"patch failed","err":"panic: boom\nWARNING"}` + "\n"},
		{name: "text log line", data: `time=1 level=ERROR msg="panic: boom"` + "\n"},
		{name: "nothing", data: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanCrashes([]byte(tt.data))
			if len(got) != len(tt.want) {
				t.Fatalf("scanCrashes(%q) = %q, want %d reports starting %q", tt.data, got, len(tt.want), tt.want)
			}
			for i, r := range got {
				if first, _, _ := strings.Cut(r, "\n"); !strings.Contains(first, tt.want[i]) {
					t.Errorf("report %d = %q, want it to start with %q", i, r, tt.want[i])
				}
			}
		})
	}
	if got := scanCrashes([]byte(plantedRace)); len(got) != 1 || !strings.Contains(got[0], "(*Worker).drain()") {
		t.Errorf("scanCrashes(race) = %q, want the stack quoted", got)
	}
}

// TestHarnessSeesCrashReports: what the harness reads at the end of each
// test: a report in the daemon's log (also one rotated and compressed), in
// a race log, in a foreground daemon's output; and, from a race-built
// process started with the harness's environment, a real race report,
// which lands in the test's race dir and not on stderr.
func TestHarnessSeesCrashReports(t *testing.T) {
	t.Parallel()
	// Not newEnv: its cleanup would fail this test for the reports planted.
	e := &tenv{t: t, ws: t.TempDir(), raceDir: t.TempDir()}
	if got := e.crashReports(); len(got) != 0 {
		t.Fatalf("crashReports() of a clean test = %q, want none", got)
	}
	logs := filepath.Join(e.stateDir(), "logs")
	mustDo(t, os.MkdirAll(logs, 0o700))
	mustDo(t, os.WriteFile(filepath.Join(logs, "patchd.log"), []byte(`{"level":"INFO","msg":"listening"}`+"\n"+plantedRace), 0o600))
	gz, err := os.Create(filepath.Join(logs, "patchd-2026-01-01T00-00-00.000.log.gz"))
	mustDo(t, err)
	zw := gzip.NewWriter(gz)
	zw.Write([]byte("panic: in a rotated log\n"))
	mustDo(t, zw.Close())
	mustDo(t, gz.Close())
	mustDo(t, os.WriteFile(filepath.Join(e.raceDir, "race.123"), []byte(plantedRace), 0o600))
	out := &syncBuffer{}
	out.Write([]byte("time=1 level=INFO msg=ready\nfatal error: all goroutines are asleep - deadlock!\n"))
	e.outputs = append(e.outputs, out)

	got := strings.Join(e.crashReports(), "\n")
	for _, want := range []string{
		filepath.Join(logs, "patchd.log") + ":\nWARNING: DATA RACE",
		".log.gz:\npanic: in a rotated log",
		filepath.Join(e.raceDir, "race.123") + ":\n",
		"output of foreground daemon 1:\nfatal error: all goroutines are asleep",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("crashReports() = %s\nwant it to contain %q", got, want)
		}
	}

	if !raceEnabled {
		t.Log("not race-built: no real race report to route")
		return
	}
	e = &tenv{t: t, ws: t.TempDir(), raceDir: t.TempDir()}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(e.env(), "PATCHD_TEST_RACE=1")
	r := runCmd(t, cmd)
	if strings.Contains(r.stderr, "DATA RACE") {
		t.Errorf("the race report went to stderr, not the race dir: %s", r)
	}
	reports := e.crashReports()
	if len(reports) != 1 || !strings.Contains(reports[0], e.raceDir) || !strings.Contains(reports[0], "racy") {
		t.Errorf("crashReports() after a real race = %q, want one report from %s naming racy (%s)", reports, e.raceDir, r)
	}
}
