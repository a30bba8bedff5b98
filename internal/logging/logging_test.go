package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTeeAndRotate: text on the console, JSON in the file, and the file is
// rotated once it passes its size.
func TestTeeAndRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "patchd.log")
	f, err := OpenFile(path, 1, "info")
	if err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	log := f.Tee(Console(&console, "info"))
	log.Info("serving", "port", 5555)
	log.Debug("hidden")

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(data), &rec); err != nil || rec["msg"] != "serving" || rec["port"] != float64(5555) {
		t.Errorf("log file = %q (%v), want one JSON record of the message", data, err)
	}
	if got := console.String(); !strings.Contains(got, "msg=serving port=5555") || strings.Contains(got, "hidden") {
		t.Errorf("console = %q, want text at info level", got)
	}

	big := strings.Repeat("x", 64<<10)
	for range 20 { // 1.3 MiB through a 1 MiB limit
		log.Info("filler", "data", big)
	}
	f.Close()
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) < 2 {
		t.Errorf("log dir holds %d files after passing the size limit, want a rotated backup too", len(entries))
	}
}

func TestLevel(t *testing.T) {
	for name, want := range map[string]string{"debug": "DEBUG", "WARN": "WARN", "error": "ERROR", "info": "INFO", "": "INFO"} {
		if got := Level(name).String(); got != want {
			t.Errorf("Level(%q) = %s, want %s", name, got, want)
		}
	}
}
