//go:build linux

package listen

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestListenInodes(t *testing.T) {
	// Shaped like real /proc/net/tcp and tcp6 output; 0x15B3 is 5555.
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 81234 1 0000000000000000 100 0 0 10 0
   1: 00000000:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
   2: 0100007F:15B3 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 81300 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:15BE 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 81400 1 0000000000000000 100 0 0 10 0
   4: 0100007F:15B3 0100007F:9C41 06 00000000:00000000 03:00000E2F 00000000     0        0 0 3 0000000000000000
`
	const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:15B3 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 92000 1 0000000000000000 100 0 0 10 0
`
	tests := []struct {
		name  string
		table string
		port  int
		want  []string
	}{
		{name: "listening v4, skipping established, time-wait and inode 0", table: tcp, port: 5555, want: []string{"81234"}},
		{name: "another port", table: tcp, port: 5566, want: []string{"81400"}},
		{name: "no listener", table: tcp, port: 40000, want: nil},
		{name: "listening v6", table: tcp6, port: 5555, want: []string{"92000"}},
		{name: "empty table", table: "", port: 5555, want: nil},
		{name: "garbage", table: "a b c\n\n0: zz:zz 0 0A 0 0 0 0 0 1\n", port: 5555, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listenInodes(strings.NewReader(tt.table), tt.port)
			if !slices.Equal(got, tt.want) {
				t.Errorf("listenInodes(%d) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}

func TestPortHolder(t *testing.T) {
	held := hold(t)
	tests := []struct {
		name string
		port int
		want string
	}{
		{name: "held by this process", port: held, want: fmt.Sprintf("pid %d (%s)", os.Getpid(), commOf(os.Args[0]))},
		{name: "free", port: freePort(t), want: ""},
		{name: "port 0", port: 0, want: ""},
		{name: "out of range", port: 70000, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PortHolder(tt.port); got != tt.want {
				t.Errorf("PortHolder(%d) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}
