package cli

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// TestUseColor: colour only on a character device (a terminal), never with
// NO_COLOR set or TERM=dumb, nor into a pipe or a buffer.
func TestUseColor(t *testing.T) {
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer dev.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	for _, tt := range []struct {
		name string
		out  io.Writer
		env  map[string]string
		want bool
	}{
		{name: "character device", out: dev, want: true},
		{name: "NO_COLOR", out: dev, env: map[string]string{"NO_COLOR": "1"}, want: false},
		{name: "TERM=dumb", out: dev, env: map[string]string{"TERM": "dumb"}, want: false},
		{name: "pipe", out: w, want: false},
		{name: "buffer", out: &bytes.Buffer{}, want: false},
	} {
		env := &Env{Stdout: tt.out, Getenv: func(k string) string { return tt.env[k] }}
		if got := useColor(env); got != tt.want {
			t.Errorf("%s: useColor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestWatchLine: one readable line per event: time, number, what
// happened, the patch, and a failure's code and error on the same line;
// coloured only when asked.
func TestWatchLine(t *testing.T) {
	e := api.Event{EventID: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Event: "patch.failed", ID: "P1", State: "failed",
		Code: "match_not_found", Error: "no match\nin a.txt"}
	plain := (&watcher{}).line(e)
	if !strings.Contains(plain, "#42") || !strings.Contains(plain, "failed") || !strings.Contains(plain, "P1") ||
		!strings.Contains(plain, "match_not_found: no match in a.txt") || strings.Contains(plain, "\x1b") || strings.Contains(plain, "\n") {
		t.Errorf("line = %q", plain)
	}
	if c := (&watcher{color: true}).line(e); !strings.Contains(c, "\x1b[31mfailed\x1b[0m") {
		t.Errorf("coloured line = %q, want failed in red", c)
	}
}
