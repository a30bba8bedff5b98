package listen

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hold binds a port on 127.0.0.1 for the rest of the test.
func hold(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// freePort returns a port that was free a moment ago. Only tests may guess
// like this, to name a specific fallback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portOf returns the port of a TCP listener.
func portOf(l net.Listener) int {
	return l.Addr().(*net.TCPAddr).Port
}

// commOf returns what the kernel reports as the command name of a process
// running this test binary: the executable's base name, cut to 15 bytes.
func commOf(exe string) string {
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	return comm
}

func TestBindAnyPort(t *testing.T) {
	tests := []struct {
		name string
		host string
	}{
		{name: "IPv4 loopback", host: "127.0.0.1"},
		{name: "host name", host: "localhost"},
		{name: "all addresses", host: ""},
		{name: "bracketed IPv6", host: "[::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, busy, err := Bind(tt.host, []int{0}, nil)
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Skipf("Bind(%q, [0]): %v; address not configured here", tt.host, err)
			}
			if err != nil {
				t.Fatalf("Bind(%q, [0]) = %v, want a listener", tt.host, err)
			}
			defer l.Close()
			if got := portOf(l); got == 0 {
				t.Errorf("Bind(%q, [0]) listens on port %d, want a real port", tt.host, got)
			}
			if len(busy) != 0 {
				t.Errorf("Bind(%q, [0]) busy = %v, want none", tt.host, busy)
			}
			// The listener must really accept, not merely exist.
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatalf("dial %s: %v", l.Addr(), err)
			}
			c.Close()
		})
	}
}

func TestBindFallback(t *testing.T) {
	tests := []struct {
		name string
		// holdPort binds a port in some process and returns the port and
		// the Holder that PortHolder should report on Linux.
		holdPort func(t *testing.T) (port int, holder string)
	}{
		{
			name: "held by this process",
			holdPort: func(t *testing.T) (int, string) {
				return hold(t), fmt.Sprintf("pid %d (%s)", os.Getpid(), commOf(os.Args[0]))
			},
		},
		{
			name: "held by another process",
			holdPort: func(t *testing.T) (int, string) {
				h := startHelper(t, "hold", nil, nil)
				port, err := strconv.Atoi(h.line(t))
				if err != nil {
					t.Fatalf("helper printed a bad port: %v", err)
				}
				return port, fmt.Sprintf("pid %d (%s)", h.cmd.Process.Pid, commOf(os.Args[0]))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busyPort, wantHolder := tt.holdPort(t)
			if runtime.GOOS != "linux" {
				wantHolder = ""
			}
			fallback := freePort(t)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))

			l, busy, err := Bind("127.0.0.1", []int{busyPort, fallback}, log)
			if err != nil {
				t.Fatalf("Bind(127.0.0.1, [%d %d]) = %v, want a listener", busyPort, fallback, err)
			}
			defer l.Close()
			if got := portOf(l); got != fallback {
				t.Errorf("Bind(127.0.0.1, [%d %d]) listens on %d, want %d", busyPort, fallback, got, fallback)
			}
			if len(busy) != 1 {
				t.Fatalf("Bind(127.0.0.1, [%d %d]) busy = %v, want one entry", busyPort, fallback, busy)
			}
			b := busy[0]
			if b.Port != busyPort || !b.InUse() || b.Holder != wantHolder {
				t.Errorf("busy[0] = {Port: %d, Holder: %q, Err: %v}, want {Port: %d, Holder: %q, Err: address in use}",
					b.Port, b.Holder, b.Err, busyPort, wantHolder)
			}
			wantLog := fmt.Sprintf("port busy\" host=127.0.0.1 port=%d", busyPort)
			if wantHolder != "" {
				wantLog += fmt.Sprintf(" holder=%q", wantHolder)
			}
			if got := logs.String(); !strings.Contains(got, wantLog) {
				t.Errorf("log = %q, want it to contain %q", got, wantLog)
			}
		})
	}
}

func TestBindAllBusy(t *testing.T) {
	a, b := hold(t), hold(t)
	l, busy, err := Bind("127.0.0.1", []int{a, b}, nil)
	if err == nil {
		l.Close()
		t.Fatalf("Bind(127.0.0.1, [%d %d]) succeeded on %s, want an error", a, b, l.Addr())
	}
	var npe *NoPortError
	if !errors.As(err, &npe) {
		t.Fatalf("Bind(127.0.0.1, [%d %d]) error = %T %v, want *NoPortError", a, b, err, err)
	}
	if l != nil {
		t.Errorf("Bind(127.0.0.1, [%d %d]) listener = %v, want nil", a, b, l)
	}
	if len(busy) != 2 || len(npe.Tried) != 2 {
		t.Errorf("busy = %v, Tried = %v, want two entries each", busy, npe.Tried)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("errors.Is(%v, EADDRINUSE) = false, want true", err)
	}
	msg := err.Error()
	for _, p := range []int{a, b} {
		if want := fmt.Sprintf("%d in use", p); !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if want := "no port available on 127.0.0.1: "; !strings.HasPrefix(msg, want) {
		t.Errorf("error %q does not start with %q", msg, want)
	}
}

func TestBindUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		port    int
		wantErr syscall.Errno
		// rootSkips is set when root may bind what others may not.
		rootSkips bool
	}{
		// 192.0.2.0/24 is TEST-NET-1, on no machine; only bind is tried,
		// nothing is sent.
		{name: "address not on this machine", host: "192.0.2.1", port: 0, wantErr: syscall.EADDRNOTAVAIL},
		{name: "privileged port", host: "127.0.0.1", port: 1, wantErr: syscall.EACCES, rootSkips: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootSkips && os.Geteuid() == 0 {
				t.Skip("root may bind any port")
			}
			l, busy, err := Bind(tt.host, []int{tt.port}, nil)
			if err == nil {
				l.Close()
				t.Skipf("Bind(%q, [%d]) succeeded; this system allows it", tt.host, tt.port)
			}
			var npe *NoPortError
			if !errors.As(err, &npe) {
				t.Fatalf("Bind(%q, [%d]) error = %T %v, want *NoPortError", tt.host, tt.port, err, err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Bind(%q, [%d]) error = %v, want %v", tt.host, tt.port, err, tt.wantErr)
			}
			if len(busy) != 1 || busy[0].InUse() || busy[0].Holder != "" {
				t.Errorf("busy = %+v, want one entry, not in use, without holder", busy)
			}
			want := fmt.Sprintf("%d not bindable: %v", tt.port, tt.wantErr)
			if got := err.Error(); !strings.Contains(got, want) {
				t.Errorf("error %q does not contain %q", got, want)
			}
		})
	}
}

func TestBindBadInput(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		ports   []int
		wantErr string
	}{
		{name: "no ports", host: "127.0.0.1", ports: nil, wantErr: "no ports to try"},
		{name: "port too large", host: "127.0.0.1", ports: []int{8080, 70000}, wantErr: "invalid port 70000"},
		{name: "negative port", host: "127.0.0.1", ports: []int{-1}, wantErr: "invalid port -1"},
		// Not a valid domain name, so it fails without asking DNS.
		{name: "malformed host", host: "not a host", ports: []int{0, 0}, wantErr: "no such host"},
		{name: "host with port", host: "127.0.0.1:80", ports: []int{0}, wantErr: "no such host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, err := Bind(tt.host, tt.ports, nil)
			if err == nil {
				l.Close()
				t.Fatalf("Bind(%q, %v) succeeded on %s, want an error", tt.host, tt.ports, l.Addr())
			}
			if got := err.Error(); !strings.Contains(got, tt.wantErr) {
				t.Errorf("Bind(%q, %v) = %q, want it to contain %q", tt.host, tt.ports, got, tt.wantErr)
			}
			var npe *NoPortError
			if errors.As(err, &npe) {
				t.Errorf("Bind(%q, %v) = *NoPortError, want a plain error: no port would fare better", tt.host, tt.ports)
			}
		})
	}
}

func TestNoPortErrorMessage(t *testing.T) {
	bindErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	tests := []struct {
		name string
		err  *NoPortError
		want string
	}{
		{
			name: "in use with and without holder",
			err: &NoPortError{Host: "127.0.0.1", Tried: []Busy{
				{Port: 5555, Holder: "pid 812 (python3)", Err: bindErr(syscall.EADDRINUSE)},
				{Port: 5566, Err: bindErr(syscall.EADDRINUSE)},
			}},
			want: "no port available on 127.0.0.1: 5555 in use by pid 812 (python3); 5566 in use (holder unknown)",
		},
		{
			name: "other failures",
			err: &NoPortError{Host: "", Tried: []Busy{
				{Port: 80, Err: bindErr(syscall.EACCES)},
				{Port: 0, Err: bindErr(syscall.EADDRNOTAVAIL)},
				{Port: 8080, Err: errors.New("something odd")},
			}},
			want: "no port available on all addresses: 80 not bindable: permission denied; " +
				"0 not bindable: cannot assign requested address; 8080 not bindable: something odd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
