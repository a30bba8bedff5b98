package daemon

import (
	"bufio"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A restarting daemon reads its successor's stderr through a pipe until the
// successor has taken over, so that a failed restart quotes what that very
// process said, never an older line of the shared log. Everything read is
// passed on to our own stderr unchanged. Once the old daemon has let go
// ("go"), the successor points its stderr back at the real one (passed as
// envStderrFD), and the pipe ends.

// outputTail copies r to w and keeps the last lines it saw.
type outputTail struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// maxTailLines and maxTailLine bound what a failed restart keeps and quotes.
const (
	maxTailLines = 20
	maxTailLine  = 500
)

func captureOutput(r io.ReadCloser, w io.Writer) *outputTail {
	t := &outputTail{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				io.WriteString(w, line)
				t.add(line)
			}
			if err != nil {
				return
			}
		}
	}()
	return t
}

func (t *outputTail) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if len(line) > maxTailLine {
		line = line[:maxTailLine] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > maxTailLines {
		t.lines = t.lines[len(t.lines)-maxTailLines:]
	}
}

// reason waits (up to wait) for the output to end, the process having
// exited, and picks the line that says why it failed: what main printed
// ("patchd: …"), else the last error logged, else the last line.
func (t *outputTail) reason(wait time.Duration) string {
	select {
	case <-t.done:
	case <-time.After(wait): // a child of the successor may hold the pipe
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(t.lines[i], "patchd: "); ok {
			return msg
		}
	}
	for i := len(t.lines) - 1; i >= 0; i-- {
		if strings.Contains(t.lines[i], "level=ERROR") {
			return t.lines[i]
		}
	}
	if n := len(t.lines); n > 0 {
		return t.lines[n-1]
	}
	return ""
}

// restoreStderr points our stderr back at the file the predecessor passed,
// ending the pipe it reads our output from.
func restoreStderr(f *os.File) error {
	if f == nil {
		return nil
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var dupErr error
	if err := rc.Control(func(fd uintptr) { dupErr = dup2(int(fd), syscall.Stderr) }); err != nil {
		return err
	}
	return dupErr
}
