package worker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/config"
	"github.com/patchd/patchd/internal/sandbox"
	"github.com/patchd/patchd/internal/store"
)

// TestCheckSandbox: a sandboxed check, run for real through the re-executed
// helper, writes inside the workspace and its TMPDIR but nowhere else, not
// into the protected state dir even inside the workspace, cannot connect to
// a TCP listener on 127.0.0.1, and holds no capability (finding 5).
func TestCheckSandbox(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skipf("no sandbox on this kernel: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()

	f := newFixture(t)
	outside := filepath.Join(f.dir, "outside", "planted")
	state := filepath.Join(f.ws, ".patchd")
	os.MkdirAll(state, 0o700)
	os.WriteFile(filepath.Join(state, "token"), []byte("real-token\n"), 0o600)
	cache := filepath.Join(f.dir, "cache")
	os.MkdirAll(cache, 0o755)
	check := func(name string, argv ...string) config.Check {
		return config.Check{Name: name, Command: argv, Timeout: 30 * time.Second, Paths: []string{name + ".txt"}, Sandbox: true, Writable: []string{cache}}
	}
	f.checks = []config.Check{
		check("outside", "sh", "-c", "echo x > "+outside),
		check("state", "sh", "-c", "echo evil > .patchd/token"),
		check("dial", exe, "__test-dial", l.Addr().String()),
		check("inside", "sh", "-c", `mkdir -p src/out && echo ok > src/out/built && echo ok > "$TMPDIR/t" && echo ok > `+filepath.Join(cache, "c")+` && echo ok > /dev/null`),
		check("caps", "sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; exit 1"),
		{Name: "dial-unconfined", Command: []string{exe, "__test-dial", l.Addr().String()}, Timeout: 30 * time.Second, Paths: []string{"control.txt"}},
	}
	signals := sandbox.ABI() >= 6 // Landlock scopes signals from ABI 6
	if signals {
		f.checks = append(f.checks, check("signal", "sh", "-c", fmt.Sprintf("kill -0 %d", os.Getpid())))
	}
	f.store.Close()
	f.open()
	f.worker.opts.Protect = []string{state}
	f.write("src/keep.txt", "keep\n", 0o644)
	for _, name := range []string{"outside", "state", "dial", "inside", "caps", "control", "signal"} {
		f.write(name+".txt", "a\n", 0o644)
		f.submit(name, name+".txt", "a", "b")
	}
	f.run()

	failing := []string{"outside", "state", "dial"}
	if signals {
		failing = append(failing, "signal")
	}
	for _, id := range failing {
		p := f.settle(id)
		t.Logf("%s: %s", id, p.Error)
		if p.State != store.StateFailed || !strings.Contains(p.Error, fmt.Sprintf("check %q failed", id)) {
			t.Errorf("%s: state %s error %q, want failed by its confined check", id, p.State, p.Error)
		}
		if got := f.read(id + ".txt"); got != "a\n" {
			t.Errorf("%s: file = %q, want the patch undone", id, got)
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("a confined check created %s outside the workspace", outside)
	}
	if data, _ := os.ReadFile(filepath.Join(state, "token")); string(data) != "real-token\n" {
		t.Errorf("a confined check rewrote the state dir's token: %q", data)
	}
	if p := f.settle("control"); p.State != store.StateApplied {
		t.Errorf("control: the same dial unconfined: state %s error %q, want applied (the listener works)", p.State, p.Error)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the listener accepted %d connections, want 1 (the unconfined check's only)", n)
	}
	if p := f.settle("inside"); p.State != store.StateApplied {
		t.Errorf("inside: state %s error %q, want applied (writes in the workspace, TMPDIR and writable are allowed)", p.State, p.Error)
	}
	if got := f.read("src/out/built"); got != "ok\n" {
		t.Errorf("src/out/built = %q, want written by the confined check", got)
	}
	p := f.settle("caps")
	for _, line := range []string{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000"} {
		if !strings.Contains(p.Error, line) {
			t.Errorf("caps: the confined check's capabilities lack %q:\n%s", line, p.Error)
		}
	}
}

// TestCheckSandboxHelperFails: when the helper cannot confine the check
// (here: a writable directory that does not exist), the check does not run
// and the patch fails saying why.
func TestCheckSandboxHelperFails(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skipf("no sandbox on this kernel: %v", err)
	}
	f := newFixture(t)
	ran := filepath.Join(f.dir, "outside", "ran")
	f.checks = []config.Check{{Name: "build", Command: []string{"sh", "-c", "echo > " + ran}, Timeout: 30 * time.Second,
		Sandbox: true, Writable: []string{filepath.Join(f.dir, "missing")}}}
	f.store.Close()
	f.open()
	f.write("a.txt", "a\n", 0o644)
	f.submit("p", "a.txt", "a", "b")
	f.run()
	p := f.settle("p")
	if p.State != store.StateFailed || !strings.Contains(p.Error, `check "build" failed (exit code 126`) || !strings.Contains(p.Error, "check sandbox: writable directory") {
		t.Errorf("state %s error %q, want failed naming the sandbox's reason", p.State, p.Error)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Errorf("the check ran although it could not be confined")
	}
}

// TestCheckSandboxNetwork: what Landlock's TCP rule does not cover is
// closed as well: a confined check can send no UDP datagram (DNS would
// carry anything out) and cannot connect with Multipath TCP, which falls
// back to plain TCP with any server (finding 5).
func TestCheckSandboxNetwork(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skipf("no sandbox on this kernel: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	var accepted atomic.Int32
	tcpSentinel := make(chan struct{})
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			// The test's own connection says "S"; a check's says nothing.
			b := make([]byte, 1)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, _ := c.Read(b); n == 1 && b[0] == 'S' {
				close(tcpSentinel)
			} else {
				accepted.Add(1)
			}
			c.Close()
		}
	}()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var received atomic.Int32
	sentinel := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "sentinel" {
				close(sentinel)
				continue
			}
			received.Add(1)
		}
	}()
	f := newFixture(t)
	f.checks = []config.Check{
		{Name: "mptcp", Command: []string{exe, "__test-dial-mptcp", strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)}, Timeout: 30 * time.Second, Paths: []string{"mptcp.txt"}, Sandbox: true},
		{Name: "udp", Command: []string{exe, "__test-udp", udp.LocalAddr().String()}, Timeout: 30 * time.Second, Paths: []string{"udp.txt"}, Sandbox: true},
	}
	f.store.Close()
	f.open()
	for _, name := range []string{"mptcp", "udp"} {
		f.write(name+".txt", "a\n", 0o644)
		f.submit(name, name+".txt", "a", "b")
	}
	f.run()
	for _, id := range []string{"mptcp", "udp"} {
		p := f.settle(id)
		t.Logf("%s: %s", id, p.Error)
		if p.State != store.StateFailed {
			t.Errorf("%s: state %s, want failed: the confined check reached the network", id, p.State)
		}
	}
	// Loopback keeps order: once the test's own datagram and connection
	// are in, any a check sent before them has been counted.
	c, err := net.Dial("udp", udp.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("sentinel"))
	c.Close()
	<-sentinel
	tc, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte("S"))
	<-tcpSentinel
	tc.Close()
	if n, m := accepted.Load(), received.Load(); n+m != 0 {
		t.Errorf("the listeners got %d TCP connections and %d datagrams from confined checks, want none", n, m)
	}
}

// TestCheckSandboxUnavailable: where the kernel cannot confine a check
// (no Landlock, or an ABI below 4), a check that asks for the sandbox is
// never run unconfined: the patch fails, saying so, and is undone.
func TestCheckSandboxUnavailable(t *testing.T) {
	f := newFixture(t)
	ran := filepath.Join(f.dir, "outside", "ran")
	f.checks = []config.Check{{Name: "build", Command: []string{"sh", "-c", "echo > " + ran}, Timeout: 30 * time.Second, Sandbox: true}}
	f.store.Close()
	f.open()
	f.worker.sandboxAvailable = func() error { return errors.New("Landlock is not available") }
	f.write("a.txt", "a\n", 0o644)
	f.submit("p", "a.txt", "a", "b")
	f.run()
	p := f.settle("p")
	if p.State != store.StateFailed || !strings.Contains(p.Error, `check "build" asks for the sandbox, which this system cannot provide (Landlock is not available)`) {
		t.Errorf("state %s error %q, want failed saying the sandbox is missing", p.State, p.Error)
	}
	if got := f.read("a.txt"); got != "a\n" {
		t.Errorf("file = %q, want the patch undone", got)
	}
	if _, err := os.Stat(ran); !os.IsNotExist(err) {
		t.Errorf("the check ran unconfined")
	}
}
