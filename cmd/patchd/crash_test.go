package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A daemon that `patchd start` detached writes its stderr into
// logs/patchd.log, the file its JSON log goes to; once that file is rotated
// and compressed, whatever the process writes to stderr lands in a file that
// is gone. So every process a test starts writes its race reports to files
// of the test's own (GORACE log_path, a file per process), and at the end of
// each test the harness reads those, the daemon's logs and the output it
// captured, and fails the test on a data race or a panic.

// crashContext is how many lines after a marker a report quotes.
const crashContext = 12

// scanCrashes returns the reports of the race detector and the Go runtime
// in data (a data race, a panic, a fatal error), each quoted with the lines
// that follow it. A report starts a line; a log line that merely mentions a
// panic (JSON, or slog text, with its newlines escaped) is not one.
func scanCrashes(data []byte) []string {
	lines := strings.Split(string(data), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.Contains(l, "WARNING: DATA RACE") && !strings.HasPrefix(l, "panic: ") && !strings.HasPrefix(l, "fatal error: ") {
			continue
		}
		end := min(i+1+crashContext, len(lines))
		out = append(out, strings.Join(lines[i:end], "\n"))
		i = end - 1
	}
	return out
}

// crashReports reads what the processes of this test left: race reports
// under its race dir, the daemon's logs (rotated ones too) and the output of
// the foreground daemons it started. Each report is prefixed by its source.
func (e *tenv) crashReports() []string {
	var files []string
	if e.raceDir != "" {
		m, _ := filepath.Glob(filepath.Join(e.raceDir, "*"))
		files = append(files, m...)
	}
	m, _ := filepath.Glob(filepath.Join(e.stateDir(), "logs", "*"))
	files = append(files, m...)
	var out []string
	for _, f := range files {
		data, err := readLog(f)
		if err != nil {
			continue
		}
		for _, r := range scanCrashes(data) {
			out = append(out, fmt.Sprintf("%s:\n%s", f, r))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, b := range e.outputs {
		for _, r := range scanCrashes([]byte(b.String())) {
			out = append(out, fmt.Sprintf("output of foreground daemon %d:\n%s", i+1, r))
		}
	}
	return out
}

// readLog reads a log file, decompressing a rotated one.
func readLog(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// failOnCrashReports fails t, quoting them, if the processes of e reported
// a data race or a panic.
func (e *tenv) failOnCrashReports() {
	for _, r := range e.crashReports() {
		e.t.Errorf("a patchd process reported a crash or a data race: %s", r)
	}
}

// raceEnv is GORACE for the processes a test starts: no second of sleep at
// exit, and the race reports in files under dir ("race.<pid>").
func raceEnv(dir string) string {
	return "GORACE=atexit_sleep_ms=0 log_path=" + filepath.Join(dir, "race")
}

// racy is the body of the test binary started with PATCHD_TEST_RACE: it
// commits a data race, so that a test sees where the report lands.
func racy() {
	var n int
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n++
			time.Sleep(10 * time.Millisecond)
		}()
	}
	wg.Wait()
	fmt.Println(n)
}
