package sandbox

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	got := Args(Spec{Writable: []string{"/ws", "/tmp/x"}, Protect: []string{"/ws/.patchd"}}, []string{"sh", "-c", "make -s"})
	want := []string{Subcommand, "--write", "/ws", "--write", "/tmp/x", "--protect", "/ws/.patchd", "--", "sh", "-c", "make -s"}
	if !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
}

func TestMainRefusesBadArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--write"}, "--write without a value"},
		{[]string{"--bogus", "x", "--", "true"}, `unknown argument "--bogus"`},
		{[]string{"--write", "/ws"}, "no command"},
		{[]string{"--write", "/ws", "--"}, "no command"},
	} {
		if err := Main(tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Main(%q) = %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}
