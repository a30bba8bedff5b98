//go:build unix

package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// listenerFiles opens n TCP listeners on 127.0.0.1 and returns their
// addresses and files for ExtraFiles. The test's own copies are closed at
// the end; until then they only share the accept queue, never accept.
func listenerFiles(t *testing.T, n int) ([]string, []*os.File) {
	t.Helper()
	var addrs []string
	var files []*os.File
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		f, err := File(l)
		if err != nil {
			t.Fatalf("File(%s) = %v", l.Addr(), err)
		}
		t.Cleanup(func() { f.Close() })
		addrs = append(addrs, l.Addr().String())
		files = append(files, f)
	}
	return addrs, files
}

// TestSystemd runs a helper process the way systemd would start a
// socket-activated service, and talks to it through the inherited sockets.
func TestSystemd(t *testing.T) {
	tests := []struct {
		name  string
		files int
		env   []string
		// want lists the names the helper must answer on each socket, in
		// fd order; nil means it must find no listeners.
		want []string
	}{
		{name: "one named socket", files: 1, env: []string{pidSelfEnv + "=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=http"}, want: []string{"http"}},
		{name: "two named sockets", files: 2, env: []string{pidSelfEnv + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=http:control"}, want: []string{"http", "control"}},
		{name: "no names", files: 1, env: []string{pidSelfEnv + "=1", "LISTEN_FDS=1"}, want: []string{"unknown"}},
		// pid 1 is init, never the helper: the variables leaked from it.
		{name: "another process's pid", files: 1, env: []string{"LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=http"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addrs, files := listenerFiles(t, tt.files)
			h := startHelper(t, "systemd", tt.env, files)
			if got, want := h.line(t), fmt.Sprintf("listeners=%d env=clean", len(tt.want)); got != want {
				t.Fatalf("helper reported %q, want %q", got, want)
			}
			for i, want := range tt.want {
				if got := ask(t, "tcp", addrs[i]); got != want {
					t.Errorf("listener on fd %d answered %q, want %q", 3+i, got, want)
				}
			}
			h.wait(t)
		})
	}
}

// TestSystemdInProcess covers the environments that must be rejected or
// ignored before any fd is touched, so they are safe to try in the test
// process itself, whose fd 3 is not a socket given to it.
func TestSystemdInProcess(t *testing.T) {
	self := fmt.Sprint(os.Getpid())
	other := fmt.Sprint(os.Getpid() + 1)
	tests := []struct {
		name    string
		env     map[string]string // unset when absent
		wantErr string            // "" means (nil, nil)
	}{
		{name: "not activated", env: nil},
		{name: "LISTEN_FDS without LISTEN_PID", env: map[string]string{"LISTEN_FDS": "1"}},
		{name: "another pid", env: map[string]string{"LISTEN_PID": other, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}},
		{name: "pid not a number", env: map[string]string{"LISTEN_PID": "me", "LISTEN_FDS": "1"}},
		{name: "zero fds", env: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "0"}},
		{name: "fds not a number", env: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "x"}, wantErr: `bad LISTEN_FDS "x"`},
		{name: "fds missing", env: map[string]string{"LISTEN_PID": self}, wantErr: `bad LISTEN_FDS ""`},
		{name: "negative fds", env: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "-1"}, wantErr: `bad LISTEN_FDS "-1"`},
		{name: "names do not match fds", env: map[string]string{"LISTEN_PID": self, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"}, wantErr: "has 2 names for 1 fds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				// Setenv first so that the test restores the variable.
				t.Setenv(k, "")
				if v, ok := tt.env[k]; ok {
					os.Setenv(k, v)
				} else {
					os.Unsetenv(k)
				}
			}
			named, err := Systemd()
			switch {
			case tt.wantErr == "" && (err != nil || named != nil):
				t.Errorf("Systemd() = %v, %v, want nil, nil", named, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Systemd() error = %v, want it to contain %q", err, tt.wantErr)
			}
			for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("after Systemd(), %s = %q, want it unset", k, v)
				}
			}
		})
	}
}

// TestInherited runs a helper process the way a restarting patchd starts
// its successor, and talks to it through the handed-down sockets.
func TestInherited(t *testing.T) {
	addrs, files := listenerFiles(t, 2)
	h := startHelper(t, "inherited", []string{helperSpecEnv + "=http=3, control=4"}, files)
	if got, want := h.line(t), "listeners=2"; got != want {
		t.Fatalf("helper reported %q, want %q", got, want)
	}
	for i, want := range []string{"http", "control"} {
		if got := ask(t, "tcp", addrs[i]); got != want {
			t.Errorf("listener on fd %d answered %q, want %q", 3+i, got, want)
		}
	}
	h.wait(t)
}

// rawFD returns a duplicate of f's fd that no *os.File owns, for code under
// test that takes fds over.
func rawFD(t *testing.T, f *os.File) int {
	t.Helper()
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(f.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestInheritedUnixSocket adopts a Unix socket in the test process, through
// an fd that no *os.File owns, as a successor would find it.
func TestInheritedUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	orig, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	f, err := File(orig)
	if err != nil {
		t.Fatalf("File(%s) = %v", path, err)
	}
	fd := rawFD(t, f)
	f.Close()

	ls, err := Inherited(fmt.Sprintf("control=%d", fd))
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("Inherited(control=%d) = %v", fd, err)
	}
	l := ls["control"]
	if l == nil {
		t.Fatalf("Inherited(control=%d) = %v, want a listener named control", fd, ls)
	}
	defer l.Close()
	if got := l.Addr().String(); got != path {
		t.Errorf("inherited listener address = %q, want %q", got, path)
	}
	// The fd was handed over, so it must be closed now.
	if _, err := syscall.Dup(fd); !errors.Is(err, syscall.EBADF) {
		t.Errorf("dup(%d) after Inherited = %v, want EBADF: the fd should be closed", fd, err)
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			fmt.Fprintln(c, "control")
			c.Close()
		}
	}()
	if got := ask(t, "unix", path); got != "control" {
		t.Errorf("inherited unix listener answered %q, want %q", got, "control")
	}
}

func TestInheritedSpec(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantErr string // "" means (nil, nil)
	}{
		{name: "empty", spec: ""},
		{name: "only separators", spec: " , ,"},
		{name: "no equals sign", spec: "http", wantErr: `"http" is not name=fd`},
		{name: "no name", spec: "=3", wantErr: `"=3" is not name=fd`},
		{name: "fd not a number", spec: "http=x", wantErr: "fd is not a number"},
		{name: "stdio fd", spec: "http=2", wantErr: "fd below 3"},
		{name: "name twice", spec: "http=3,http=4", wantErr: `name "http" given twice`},
		{name: "fd twice", spec: "http=3,control=3", wantErr: "fd 3 given twice"},
		// The bad second entry must stop Inherited before it adopts the
		// first, which in the test process is not a socket of ours.
		{name: "bad entry after good", spec: "http=3,control", wantErr: "is not name=fd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := Inherited(tt.spec)
			switch {
			case tt.wantErr == "" && (err != nil || ls != nil):
				t.Errorf("Inherited(%q) = %v, %v, want nil, nil", tt.spec, ls, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Inherited(%q) error = %v, want it to contain %q", tt.spec, err, tt.wantErr)
			}
		})
	}
}

// TestInheritedNotListener checks that fds which are not listening sockets
// are refused and left open for their owner.
func TestInheritedNotListener(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	udp, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()

	tests := []struct {
		name    string
		file    *os.File
		wantErr error
	}{
		{name: "UDP socket", file: udp, wantErr: errNotListening},
		{name: "pipe", file: r, wantErr: syscall.ENOTSOCK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := int(tt.file.Fd())
			spec := fmt.Sprintf("x=%d", fd)
			ls, err := Inherited(spec)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Inherited(%q) = %v, %v, want error %v", spec, ls, err, tt.wantErr)
			}
			// Still open: stat through the owner's *os.File works.
			if _, err := tt.file.Stat(); err != nil {
				t.Errorf("fd %d after refused Inherited: %v, want it still open", fd, err)
			}
		})
	}
}

func TestFile(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := File(l)
	if err != nil {
		t.Fatalf("File(%s) = %v, want a file", l.Addr(), err)
	}
	defer f.Close()
	if int(f.Fd()) == -1 {
		t.Errorf("File(%s) returned a closed file", l.Addr())
	}

	if f, err := File(fakeListener{}); err == nil {
		f.Close()
		t.Errorf("File(fakeListener) succeeded, want an error: it has no socket")
	}
}

// fakeListener is a net.Listener without a socket behind it.
type fakeListener struct{}

func (fakeListener) Accept() (net.Conn, error) { return nil, errors.New("fake") }
func (fakeListener) Close() error              { return nil }
func (fakeListener) Addr() net.Addr            { return &net.TCPAddr{} }
