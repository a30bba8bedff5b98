package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetain(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want Retain
		str  string
	}{
		{"90d", Retain{MaxAge: 90 * day}, "90d"},
		{"720h", Retain{MaxAge: 30 * day}, "30d"},
		{"36h", Retain{MaxAge: 36 * time.Hour}, "36h0m0s"},
		{"100000", Retain{MaxCount: 100000}, "100000"},
		{"30d,50000", Retain{MaxAge: 30 * day, MaxCount: 50000}, "30d,50000"},
		{"50000, 30d", Retain{MaxAge: 30 * day, MaxCount: 50000}, "30d,50000"},
		{"forever", Retain{}, "forever"},
		{"0", Retain{}, "forever"},
	}
	for _, tt := range tests {
		got, err := ParseRetain(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseRetain(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got.String(), err, tt.want, tt.str)
		}
		if again, err := ParseRetain(got.String()); err != nil || again != got {
			t.Errorf("ParseRetain(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
	for _, bad := range []string{"", "x", "-5", "-1d", "0d", "30d,40d", "5,6", "1,2,3", "10y", "0s", "30d,forever", "1.5d"} {
		if r, err := ParseRetain(bad); err == nil {
			t.Errorf("ParseRetain(%q) = %+v, want an error", bad, r)
		}
	}
}

// TestRetainSetting: --retain defaults to 90 days, and a bad value is one
// line naming the flag and the value.
func TestRetainSetting(t *testing.T) {
	ws := t.TempDir()
	c, err := load(t, []string{"--workspace", ws}, nil)
	if err != nil || c.Retain != (Retain{MaxAge: 90 * 24 * time.Hour}) {
		t.Fatalf("default Retain = %+v, %v; want 90 days", c.Retain, err)
	}
	_, err = load(t, []string{"--workspace", ws, "--retain", "soon"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `--retain: must be an age`) || !strings.Contains(err.Error(), `not "soon"`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("--retain soon: error %v, want one line naming --retain and \"soon\"", err)
	}
	c, err = load(t, []string{"--workspace", ws}, map[string]string{"PATCHD_RETAIN": "30d,50000"})
	if err != nil || c.Retain != (Retain{MaxAge: 30 * 24 * time.Hour, MaxCount: 50000}) {
		t.Errorf("PATCHD_RETAIN=30d,50000: Retain = %+v, %v", c.Retain, err)
	}
}
