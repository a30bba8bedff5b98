package daemon

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestOutputTailReason: a failed restart quotes what main printed, else the
// last error logged, else the last line; the output passes through whole.
func TestOutputTailReason(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{name: "main's message", out: "time=1 level=ERROR msg=x\npatchd: open store: disk full\n", want: "open store: disk full"},
		{name: "an error logged", out: "time=1 level=INFO msg=a\ntime=2 level=ERROR msg=b\ntime=3 level=INFO msg=c\n", want: "time=2 level=ERROR msg=b"},
		{name: "anything else", out: "broken build\n\n", want: "broken build"},
		{name: "no final newline", out: "first\nlast words", want: "last words"},
		{name: "nothing", out: "", want: ""},
		{name: "a long line", out: strings.Repeat("x", 2*maxTailLine), want: strings.Repeat("x", maxTailLine) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var passed strings.Builder
			tail := captureOutput(io.NopCloser(strings.NewReader(tt.out)), &passed)
			if got := tail.reason(5 * time.Second); got != tt.want {
				t.Errorf("reason() = %q, want %q", got, tt.want)
			}
			if passed.String() != tt.out {
				t.Errorf("passed on %q, want %q", passed.String(), tt.out)
			}
		})
	}
}
