package listen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests re-execute their own binary as a helper process, so that a port
// can be held by, or a socket inherited by, a process other than the test.
const (
	// helperEnv selects the helper's mode: "hold", "systemd" or "inherited".
	helperEnv = "PATCHD_LISTEN_TEST_HELPER"
	// helperSpecEnv carries the spec for the "inherited" mode.
	helperSpecEnv = "PATCHD_LISTEN_TEST_SPEC"
	// pidSelfEnv asks the "systemd" helper to set LISTEN_PID to its own
	// pid, which its parent cannot know before starting it.
	pidSelfEnv = "LISTEN_PID_SELF"
	// helperTimeout bounds every wait in and for a helper.
	helperTimeout = 30 * time.Second
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(mode string) error {
	switch mode {
	case "hold":
		return helperHold()
	case "systemd":
		return helperSystemd()
	case "inherited":
		return helperInherited()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// helperHold listens on a port, prints it and holds it until stdin closes.
func helperHold() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// helperSystemd calls Systemd, prints "listeners=N env=clean" (or which
// variables survived) and then answers one connection on each listener
// with the listener's name.
func helperSystemd() error {
	if os.Getenv(pidSelfEnv) == "1" {
		os.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	}
	named, err := Systemd()
	if err != nil {
		return err
	}
	var left []string
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			left = append(left, k)
		}
	}
	env := "clean"
	if len(left) > 0 {
		env = strings.Join(left, ",")
	}
	fmt.Printf("listeners=%d env=%s\n", len(named), env)
	return serveNames(named)
}

// helperInherited calls Inherited with the spec from the environment,
// prints "listeners=N" and answers like helperSystemd.
func helperInherited() error {
	ls, err := Inherited(os.Getenv(helperSpecEnv))
	if err != nil {
		return err
	}
	var named []Named
	for name, l := range ls {
		named = append(named, Named{Name: name, Listener: l})
	}
	fmt.Printf("listeners=%d\n", len(named))
	return serveNames(named)
}

// serveNames accepts one connection on each listener, concurrently because
// the parent may dial them in any order, and writes the name to it.
func serveNames(named []Named) error {
	var wg sync.WaitGroup
	errs := make([]error, len(named))
	for i, n := range named {
		wg.Go(func() {
			defer n.Listener.Close()
			if d, ok := n.Listener.(interface{ SetDeadline(time.Time) error }); ok {
				d.SetDeadline(time.Now().Add(helperTimeout))
			}
			c, err := n.Listener.Accept()
			if err != nil {
				errs[i] = fmt.Errorf("accept on %s: %w", n.Name, err)
				return
			}
			defer c.Close()
			_, errs[i] = fmt.Fprintln(c, n.Name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// helper is a running helper process.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr strings.Builder
}

// startHelper starts the test binary in mode with extra environment and
// files (fd 3 on). Cleanup closes its stdin and waits for it.
func startHelper(t *testing.T, mode string, env []string, files []*os.File) *helper {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	// A race-built helper otherwise sleeps a second at exit.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE="+gorace)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	h := &helper{cmd: cmd}
	cmd.Stderr = &h.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.stdin, h.stdout = stdin, bufio.NewReader(stdout)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() {
		defer cancel()
		h.stdin.Close()
		// Wait (in wait) may already have reaped it.
		if cmd.ProcessState == nil {
			cmd.Wait()
		}
	})
	return h
}

// line reads one line the helper printed.
func (h *helper) line(t *testing.T) string {
	t.Helper()
	s, err := h.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("read from helper: %v (stderr: %s)", err, h.stderr.String())
	}
	return strings.TrimSuffix(s, "\n")
}

// wait waits for the helper to exit and fails the test unless it exited 0.
func (h *helper) wait(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("helper exited: %v (stderr: %s)", err, h.stderr.String())
	}
}

// ask dials addr and returns the line the helper answers.
func ask(t *testing.T, network, addr string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, helperTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(helperTimeout))
	s, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSuffix(s, "\n")
}
