package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ipcPair makes a unix stream socketpair like the one Node creates for an
// "ipc" stdio entry. ours is the parent's end; theirs is the raw child end,
// left for NewPM2 to own.
func ipcPair(t *testing.T) (ours net.Conn, theirs int) {
	t.Helper()
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	f := os.NewFile(uintptr(fds[0]), "ipc-parent")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		t.Fatalf("FileConn: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, fds[1]
}

// readLine reads one "\n"-terminated message, failing the test if none
// arrives in time.
func readLine(t *testing.T, r *bufio.Reader, conn net.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read message: %v (got %q so far)", err, line)
	}
	return line
}

func setChannel(t *testing.T, fd, mode string) {
	t.Setenv(EnvNodeChannelFD, fd)
	t.Setenv(EnvNodeChannelSerialization, mode)
}

func TestPM2Ready(t *testing.T) {
	conn, fd := ipcPair(t)
	setChannel(t, strconv.Itoa(fd), "json")
	p := NewPM2()
	if !p.Enabled() {
		t.Fatalf("Enabled() = false (Err %v), want true", p.Err())
	}
	r := bufio.NewReader(conn)

	// Children must not inherit PM2's channel; the write deadline needs
	// a non-blocking descriptor.
	if flags := fdFlags(t, strconv.Itoa(fd)); flags.fd&syscall.FD_CLOEXEC == 0 || flags.fl&syscall.O_NONBLOCK == 0 {
		t.Errorf("channel flags %+v, want FD_CLOEXEC and O_NONBLOCK", flags)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got, want := readLine(t, r, conn), "\"ready\"\n"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Ready(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Ready after Close = %v, want %v", err, os.ErrClosed)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after Close, parent read %q, %v; want EOF", rest, err)
	}
}

func TestPM2Shutdown(t *testing.T) {
	tests := []struct {
		name     string
		send     string
		shutdown bool
	}{
		{name: "shutdown", send: "\"shutdown\"\n", shutdown: true},
		{name: "after other messages", send: "{\"type\":\"process:msg\",\"data\":{\"x\":1}}\n\"hello\"\nnot json\n\"shutdown\"\n", shutdown: true},
		{name: "after an overlong message", send: "\"" + strings.Repeat("x", 3*pm2MaxMessage) + "\"\n\"shutdown\"\n", shutdown: true},
		{name: "incomplete message", send: "\"shutdown\"", shutdown: false},
		{name: "object is not the message", send: "{\"shutdown\":true}\n{\"data\":\"shutdown\",\"type\":\"shutdown\"}\n", shutdown: false},
		{name: "overlong line ending in shutdown", send: strings.Repeat("x", 2*pm2MaxMessage) + "\"shutdown\"\n", shutdown: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, fd := ipcPair(t)
			setChannel(t, strconv.Itoa(fd), "")
			p := NewPM2()
			if !p.Enabled() {
				t.Fatalf("Enabled() = false (Err %v), want true", p.Err())
			}
			defer p.Close()
			written := make(chan error, 1)
			go func() {
				_, err := conn.Write([]byte(tt.send))
				written <- err
			}()
			if tt.shutdown {
				select {
				case <-p.ShutdownRequested():
				case <-time.After(5 * time.Second):
					t.Fatalf("ShutdownRequested not closed after %q", trim(tt.send))
				}
				return
			}
			// The reader reaches EOF only after judging every byte
			// before it, so its exit is when the answer is final.
			if err := <-written; err != nil {
				t.Fatalf("write: %v", err)
			}
			conn.(*net.UnixConn).CloseWrite()
			select {
			case <-p.readerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("PM2 reader did not stop at EOF")
			}
			select {
			case <-p.ShutdownRequested():
				t.Errorf("ShutdownRequested closed after %q, want open", trim(tt.send))
			default:
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func TestPM2Absent(t *testing.T) {
	setChannel(t, "", "")
	p := NewPM2()
	if p.Enabled() || p.Err() != nil {
		t.Errorf("Enabled(), Err() = %v, %v; want false, nil", p.Enabled(), p.Err())
	}
	if err := p.Ready(); err != nil {
		t.Errorf("Ready() = %v, want nil", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	select {
	case <-p.ShutdownRequested():
		t.Error("ShutdownRequested closed without PM2")
	default:
	}
}

// TestPM2Refuses checks that descriptors that cannot be Node's channel are
// neither used nor altered: they belong to someone else.
func TestPM2Refuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		mode string
		fd   func(t *testing.T) string // "" in the name means no descriptor
	}{
		{name: "not a number", fd: func(*testing.T) string { return "three" }},
		{name: "negative", fd: func(*testing.T) string { return "-1" }},
		{name: "closed descriptor", fd: func(t *testing.T) string {
			f, err := os.Create(filepath.Join(dir, "closed"))
			if err != nil {
				t.Fatal(err)
			}
			fd := f.Fd()
			f.Close()
			return strconv.Itoa(int(fd))
		}},
		{name: "regular file", fd: func(t *testing.T) string { return keepFile(t, filepath.Join(dir, "regular")) }},
		{name: "pipe", fd: func(t *testing.T) string {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return strconv.Itoa(int(w.Fd()))
		}},
		{name: "datagram socket", fd: func(t *testing.T) string {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
			return strconv.Itoa(fds[1])
		}},
		{name: "listening socket", fd: func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f, err := l.(*net.TCPListener).File()
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return strconv.Itoa(int(f.Fd()))
		}},
		{name: "advanced serialization", mode: "advanced", fd: func(t *testing.T) string {
			_, fd := ipcPair(t)
			t.Cleanup(func() { syscall.Close(fd) })
			return strconv.Itoa(fd)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := tt.fd(t)
			setChannel(t, fd, tt.mode)
			before := fdFlags(t, fd)
			p := NewPM2()
			if p.Enabled() || p.Err() == nil {
				t.Errorf("NODE_CHANNEL_FD=%s: Enabled(), Err() = %v, %v; want false and an error", fd, p.Enabled(), p.Err())
			}
			if after := fdFlags(t, fd); after != before {
				t.Errorf("NODE_CHANNEL_FD=%s: descriptor flags %+v, were %+v", fd, after, before)
			}
			if err := p.Ready(); err != nil {
				t.Errorf("Ready() = %v, want nil (disabled)", err)
			}
		})
	}
}

// flags are a descriptor's fcntl flags: F_GETFD and F_GETFL, -1 when it is
// not open.
type flags struct{ fd, fl int }

func fdFlags(t *testing.T, fd string) flags {
	t.Helper()
	n, err := strconv.Atoi(fd)
	if err != nil || n < 0 {
		return flags{-1, -1}
	}
	get := func(cmd int) int {
		v, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(n), uintptr(cmd), 0)
		if errno != 0 {
			return -1
		}
		return int(v)
	}
	return flags{get(syscall.F_GETFD), get(syscall.F_GETFL)}
}

func keepFile(t *testing.T, name string) string {
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return strconv.Itoa(int(f.Fd()))
}

func TestPM2WriteTimeout(t *testing.T) {
	_, fd := ipcPair(t) // the parent never reads
	setChannel(t, strconv.Itoa(fd), "json")
	p := NewPM2()
	if !p.Enabled() {
		t.Fatalf("Enabled() = false (Err %v), want true", p.Err())
	}
	defer p.Close()
	p.writeTimeout = 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.Ready()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			t.Fatalf("Ready() = %v, want %v once the buffer is full", err, os.ErrDeadlineExceeded)
		}
		if time.Now().After(deadline) {
			t.Fatal("Ready never timed out with a parent that does not read")
		}
	}
}

// TestPM2Child gives a real child process the channel on fd 3 with the
// environment Node sets, and reads what it sends.
func TestPM2Child(t *testing.T) {
	conn, fd := ipcPair(t)
	theirs := os.NewFile(uintptr(fd), "ipc-child")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the child
	cmd.Env = append(CleanEnv(os.Environ()), envChild+"=pm2-ready", EnvNodeChannelFD+"=3", EnvNodeChannelSerialization+"=json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("child: %v; stderr:\n%s", werr, stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("read from child: %v", err)
	}
	if want := "\"ready\"\n"; string(got) != want {
		t.Errorf("child sent %q, want %q", got, want)
	}
}

// nodeParent spawns its first argument with an "ipc" stdio entry, as PM2
// does for every app, answers "ready" with "shutdown" (PM2's
// shutdown_with_message), and prints every message it received.
const nodeParent = `
const { spawn } = require('child_process');
const [bin, ...args] = process.argv.slice(1);
const child = spawn(bin, args, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
const messages = [];
child.on('message', (m) => {
  messages.push(m);
  if (m === 'ready') child.send('shutdown');
});
const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  console.log('RESULT ' + JSON.stringify({ messages, code, signal }));
});
`

// TestPM2Node runs the real thing: a Node parent speaking its IPC protocol
// to this package in a child.
func TestPM2Node(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	cmd := exec.Command(node, "-e", nodeParent, os.Args[0], "-test.run=^$")
	cmd.Env = append(CleanEnv(os.Environ()), envChild+"=pm2-node")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v; stdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}

	var child childReport
	var result struct {
		Messages []any  `json:"messages"`
		Code     *int   `json:"code"`
		Signal   string `json:"signal"`
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(line, "CHILD "); ok {
			if err := json.Unmarshal([]byte(v), &child); err != nil {
				t.Fatalf("child report %q: %v", v, err)
			}
		}
		if v, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(v), &result); err != nil {
				t.Fatalf("node result %q: %v", v, err)
			}
		}
	}
	if !child.Enabled || child.ChannelFD != "3" || child.Serialization != "json" {
		t.Errorf("child saw %+v, want enabled with NODE_CHANNEL_FD=3 and serialization json", child)
	}
	if len(result.Messages) != 1 || result.Messages[0] != "ready" {
		t.Errorf("node received %#v, want exactly the string \"ready\"", result.Messages)
	}
	if result.Code == nil || *result.Code != 0 {
		t.Errorf("child exit code %v signal %q, want 0 (it exits 0 only on \"shutdown\"); stderr:\n%s", result.Code, result.Signal, stderr.Bytes())
	}
}
