package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real binary as a user or a supervisor would: built
// once, started as processes, signalled and killed for real.

var patchdBin string

// raceLogDir collects the race reports of processes started outside a test's
// tenv (cleanEnv); TestMain fails the run if any is there at the end.
var raceLogDir string

func TestMain(m *testing.M) {
	if port := os.Getenv("PATCHD_TEST_HOLD_PORT"); port != "" {
		holdPort(port)
		return
	}
	if os.Getenv("PATCHD_TEST_RACE") != "" {
		racy()
		return
	}
	flag.Parse()
	if testing.Short() {
		// The quick inner loop: no binary; every process test skips (in
		// newEnv, or runCmd), and one that starts it otherwise fails
		// saying why.
		patchdBin = "patchd-not-built-with-short"
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "patchd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	patchdBin = filepath.Join(dir, "patchd")
	raceLogDir = filepath.Join(dir, "race")
	if err := os.Mkdir(raceLogDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", patchdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build patchd:", err)
		os.Exit(1)
	}
	code := m.Run()
	races, _ := filepath.Glob(filepath.Join(raceLogDir, "*"))
	for _, f := range races {
		data, _ := os.ReadFile(f)
		for _, r := range scanCrashes(data) {
			fmt.Fprintf(os.Stderr, "FAIL: a patchd process started outside a test's tenv reported a data race (%s):\n%s\n", filepath.Base(f), r)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// holdPort is a foreign process that occupies a port: it listens, says so,
// and waits to be killed.
func holdPort(port string) {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", l.Addr().(*net.TCPAddr).Port)
	select {}
}

// tenv is one test's workspace and state dir.
type tenv struct {
	t  *testing.T
	ws string
	// state, when set, is passed as --state-dir to every command (a state
	// dir on its own file system); otherwise it is <ws>/.patchd.
	state string
	// raceDir receives the race reports of the processes this test starts
	// (see crash_test.go).
	raceDir string
	mu      sync.Mutex
	outputs []*syncBuffer // of the foreground daemons, scanned at the end
}

// skipShort skips a test that runs the binary when the tests run -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a process test: skipped with -short")
	}
}

func newEnv(t *testing.T) *tenv {
	t.Helper()
	skipShort(t)
	e := &tenv{t: t, ws: t.TempDir(), raceDir: t.TempDir()}
	t.Cleanup(func() {
		// Whatever a test leaves running for this workspace is stopped.
		e.command("stop").Run()
		for _, pid := range e.pids() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		// Then what they said is read: a race or a panic fails the test.
		e.failOnCrashReports()
	})
	return e
}

func (e *tenv) stateDir() string {
	if e.state != "" {
		return e.state
	}
	return filepath.Join(e.ws, ".patchd")
}

// command builds a patchd command for this workspace. Extra flags follow the
// workspace flag; a test that wants a fixed port passes --port itself.
func (e *tenv) command(args ...string) *exec.Cmd {
	full := []string{args[0], "--workspace", e.ws}
	if e.state != "" {
		full = append(full, "--state-dir", e.state)
	}
	full = append(full, args[1:]...)
	cmd := exec.Command(patchdBin, full...)
	cmd.Env = e.env()
	// A daemon that restarted passes its output to its successor, which
	// keeps our pipe open after the process we started has exited.
	cmd.WaitDelay = time.Second
	return cmd
}

// env is cleanEnv with the race reports going to this test's race dir.
func (e *tenv) env() []string {
	env := cleanEnv()
	for i, kv := range env {
		if strings.HasPrefix(kv, "GORACE=") {
			env[i] = raceEnv(e.raceDir)
		}
	}
	return env
}

// cleanEnv keeps the caller's PATCHD_ and GORACE settings out of the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATCHD_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	// A race-built binary otherwise sleeps a second at every exit.
	return append(env, raceEnv(raceLogDir))
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

func (e *tenv) run(args ...string) result {
	e.t.Helper()
	return runCmd(e.t, e.command(args...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	if cmd.Args[0] == patchdBin {
		skipShort(t)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %v: %v", cmd.Args, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// status is `patchd status --json`.
type status struct {
	Running bool   `json:"running"`
	PID     int    `json:"pid"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Reason  string `json:"reason"`
}

func (e *tenv) status() (status, result) {
	e.t.Helper()
	r := e.run("status", "--json")
	var st status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("status --json: %v (%s)", err, r)
	}
	return st, r
}

// start runs `patchd start --port 0` and returns the pid it printed.
func (e *tenv) start(args ...string) (int, result) {
	e.t.Helper()
	r := e.run(append([]string{"start", "--port", "0"}, args...)...)
	return pidOf(r.stdout), r
}

var pidPattern = "pid="

func pidOf(out string) int {
	i := strings.Index(out, pidPattern)
	if i < 0 {
		return 0
	}
	rest := out[i+len(pidPattern):]
	j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if j < 0 {
		j = len(rest)
	}
	n, _ := strconv.Atoi(rest[:j])
	return n
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRunning polls status until a daemon answers and returns it.
func (e *tenv) waitRunning(timeout time.Duration) status {
	e.t.Helper()
	var st status
	waitFor(e.t, timeout, "a running daemon", func() bool {
		st, _ = e.status()
		return st.Running && st.PID != 0
	})
	return st
}

// pids lists live patchd processes serving or standing by for this
// workspace, read from /proc: the ground truth, not what patchd says.
func (e *tenv) pids() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != patchdBin {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[1] == "run" && bytes.Contains(cmdline, []byte(e.ws+"\x00")) && !isZombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// procStat reads /proc/<pid>/stat's state and flags; ok is false if the
// process is gone (or the file cannot be read).
func procStat(pid int) (state byte, flags uint64, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 7 || len(f[0]) != 1 {
		return 0, 0, false
	}
	flags, _ = strconv.ParseUint(f[6], 10, 64)
	return f[0][0], flags, true
}

func isZombie(pid int) bool {
	state, _, ok := procStat(pid)
	return !ok || state == 'Z'
}

// exited reports whether pid is gone, a zombie, or in the kernel's exit
// (PF_EXITING in /proc/<pid>/stat's flags): it runs no more of its own
// code. The kernel closes an exiting process's descriptors, so that a
// peer reads EOF, before it makes it a zombie, and on a loaded machine a
// check in between sees it still there (the clean-clone CI run of 986bf0a
// did, once, after patchd stop).
func exited(pid int) bool {
	const pfExiting = 0x4
	state, flags, ok := procStat(pid)
	return !ok || state == 'Z' || flags&pfExiting != 0
}

// listeners counts the distinct TCP sockets in LISTEN state that the given
// pids hold (a socket shared by several descriptors counts once).
func listeners(t *testing.T, pids []int) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 && fields[3] == "0A" {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
	}
	held := map[string]bool{}
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if inodes[target] {
				held[target] = true
			}
		}
	}
	return len(held)
}

// getHealth GETs /health at address, without the token: status and uptime.
func getHealth(address string) (int, map[string]any, error) {
	return getHealthAuth(address, "")
}

// getHealthAuth GETs /health at address with the token: with the details.
func getHealthAuth(address, token string) (int, map[string]any, error) {
	c := http.Client{Timeout: 3 * time.Second}
	req, err := http.NewRequest("GET", "http://"+address+"/health", nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, err
}

// freePort finds a port that was free a moment ago, for tests that need a
// fixed port number (the daemon itself never guesses like this).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// foreignHolder starts another process that listens on a free port and
// returns the port and the process.
func foreignHolder(t *testing.T) (int, *exec.Cmd) {
	t.Helper()
	skipShort(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PATCHD_TEST_HOLD_PORT=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var word string
	var port int
	if _, err := fmt.Fscan(out, &word, &port); err != nil || word != "listening" {
		t.Fatalf("port holder did not start: %v %s", err, word)
	}
	return port, cmd
}

// startRun starts `patchd run` in the foreground, output captured.
func (e *tenv) startRun(args ...string) (*exec.Cmd, *syncBuffer) {
	e.t.Helper()
	cmd := e.command(append([]string{"run"}, args...)...)
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	e.mu.Lock()
	e.outputs = append(e.outputs, buf)
	e.mu.Unlock()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, buf
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exitCode waits for cmd with a timeout and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, exec.ErrWaitDelay) {
			return cmd.ProcessState.ExitCode()
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(500 * time.Millisecond)
		t.Fatalf("%v did not exit within %s", cmd.Args, timeout)
	}
	return -1
}

// token reads the webhook token the daemon generated.
func (e *tenv) token() string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.stateDir(), "token"))
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// halfRequest sends a webhook request's headers with "Expect:
// 100-continue" and returns once the daemon's handler has started reading
// the body (it answers "100 Continue"), so the request is provably in flight
// until finish sends the body.
func (e *tenv) halfRequest(address, body string) (conn net.Conn, finish func() (string, error)) {
	e.t.Helper()
	c, err := net.Dial("tcp", address)
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
		address, e.token(), len(body))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 100 Continue") {
		e.t.Fatalf("no 100 Continue from the webhook: %q %v", buf[:n], err)
	}
	return c, func() (string, error) {
		if _, err := c.Write([]byte(body)); err != nil {
			return "", err
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
}

// waitRefused polls until address no longer accepts connections.
func waitRefused(t *testing.T, address string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", address, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}
