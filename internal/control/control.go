// Package control is the daemon's control channel: a Unix socket (mode 0600)
// in the state directory that speaks one JSON line each way.
//
// Only the socket's owner can connect, so stop, restart and status need no
// token. A "stop" connection is deliberately never closed by the daemon:
// the kernel closes it when the process is gone, which is how `patchd stop`
// knows the process has exited without polling PIDs. Standbys (processes
// waiting for the instance lock) stay connected the same way, so that the
// daemon can count them and tell them when `patchd stop` stops the instance.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning means nothing listens on the control socket.
var ErrNotRunning = errors.New("not running")

// ErrNoAnswer means the daemon accepted a command but closed the
// connection without answering.
var ErrNoAnswer = errors.New("no answer")

// Request is one command. PID is set by a standby registering itself;
// Args are a command's arguments (JSON), if it takes any.
type Request struct {
	Cmd  string          `json:"cmd"`
	PID  int             `json:"pid,omitempty"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is the answer to one command.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Handler answers a command, with its arguments (nil if none were sent).
// hold asks the server to keep the connection open until the process
// exits.
type Handler func(ctx context.Context, cmd string, args json.RawMessage) (result any, hold bool, err error)

// Listen creates the socket at path, replacing a stale one. The caller must
// hold the instance lock, which is what makes removing the old file safe.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod control socket %s: %w", path, err)
	}
	// Removing the file is ours to do at exit, not the listener's: after a
	// restart the new process serves the same socket.
	l.SetUnlinkOnClose(false)
	return l, nil
}

// Server serves control requests.
//
// Besides commands it keeps a registry of standbys: processes waiting to
// take over the instance lock, which connect with "standby" and stay
// connected. StopStandbys tells them the instance is being stopped, so
// that `patchd stop` stops them too instead of handing the instance to one.
type Server struct {
	l        net.Listener
	h        Handler
	log      *slog.Logger
	mu       sync.Mutex
	held     []net.Conn
	standbys map[*standby]struct{}
	stopping bool // StopStandbys was called: newcomers are told at once
	wg       sync.WaitGroup
}

// standby is one registered standby's connection; gone is closed when the
// connection ends, which is when the standby process exits.
type standby struct {
	c    net.Conn
	pid  int
	gone chan struct{}
}

// NewServer returns a server for l.
func NewServer(l net.Listener, h Handler, log *slog.Logger) *Server {
	return &Server{l: l, h: h, log: log}
}

// Serve accepts until the listener is closed.
func (s *Server) Serve(ctx context.Context) {
	for {
		c, err := s.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("control accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

// CloseHeld closes the connections kept open by handlers that asked to
// hold them, for a process that lives on after letting go of its work.
func (s *Server) CloseHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
}

// StopAccepting closes the listener without waiting for requests in
// flight (one of them may be the restart that is calling it).
func (s *Server) StopAccepting() { s.l.Close() }

// Close stops accepting, drops the standbys (see DropStandbys) and waits
// for requests in flight. Held connections stay open on purpose.
func (s *Server) Close() {
	s.l.Close()
	s.DropStandbys()
	s.wg.Wait()
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req Request
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		writeResponse(c, Response{Error: "bad request: " + err.Error()})
		c.Close()
		return
	}
	if req.Cmd == cmdStandby {
		s.serveStandby(c, r, req.PID)
		return
	}
	res, hold, err := s.h(ctx, req.Cmd, req.Args)
	resp := Response{OK: err == nil}
	if err != nil {
		resp.Error = err.Error()
	} else if res != nil {
		resp.Result, _ = json.Marshal(res)
	}
	writeResponse(c, resp)
	if hold && err == nil {
		s.mu.Lock()
		s.held = append(s.held, c)
		s.mu.Unlock()
		return
	}
	c.Close()
}

// cmdStandby registers a standby; cmdStop is what it is told when the
// instance stops.
const (
	cmdStandby = "standby"
	cmdStop    = "stop"
)

// serveStandby registers c as a standby until it closes.
func (s *Server) serveStandby(c net.Conn, r *bufio.Reader, pid int) {
	sb := &standby{c: c, pid: pid, gone: make(chan struct{})}
	s.mu.Lock()
	if s.standbys == nil {
		s.standbys = map[*standby]struct{}{}
	}
	s.standbys[sb] = struct{}{}
	stopping := s.stopping
	s.mu.Unlock()
	writeResponse(c, Response{OK: true})
	if stopping {
		tellStop(c)
	}
	// The standby never writes again: the read ends when it exits (or
	// when we drop it).
	c.SetReadDeadline(time.Time{})
	io.Copy(io.Discard, r)
	c.Close()
	s.mu.Lock()
	delete(s.standbys, sb)
	s.mu.Unlock()
	close(sb.gone)
}

func tellStop(c net.Conn) {
	data, _ := json.Marshal(Request{Cmd: cmdStop})
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(data, '\n'))
}

// Standbys returns the pids of the standbys registered now.
func (s *Server) Standbys() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := make([]int, 0, len(s.standbys))
	for sb := range s.standbys {
		pids = append(pids, sb.pid)
	}
	slices.Sort(pids)
	return pids
}

// StopStandbys tells every registered standby that the instance stops, and
// any that registers from now on, and waits until those told have exited
// or ctx is done. It returns the pids of those that exited.
func (s *Server) StopStandbys(ctx context.Context) []int {
	s.mu.Lock()
	s.stopping = true
	told := make([]*standby, 0, len(s.standbys))
	for sb := range s.standbys {
		told = append(told, sb)
	}
	s.mu.Unlock()
	for _, sb := range told {
		tellStop(sb.c)
	}
	var gone []int
	for _, sb := range told {
		select {
		case <-sb.gone:
			gone = append(gone, sb.pid)
		case <-ctx.Done():
			s.log.Warn("a standby did not exit after being told the instance stops", "pid", sb.pid)
		}
	}
	slices.Sort(gone)
	return gone
}

// DropStandbys closes the standbys' connections without telling them to
// stop. They register again with whoever serves the socket next (the
// successor of a restart, or this process after a failed one).
func (s *Server) DropStandbys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sb := range s.standbys {
		sb.c.Close()
	}
}

// Standby registers this process (pid) as a standby with the daemon at
// path, and waits. It returns a nil error when the daemon says the instance
// is being stopped (`patchd stop`): the returned connection must then stay
// open until this process exits, because the daemon waits for it to close
// to know that the standby is gone. Any other end (ErrNotRunning, the
// daemon closed the connection, ctx done) is an error, and the caller
// registers again while it still stands by.
func Standby(ctx context.Context, path string, pid int) (net.Conn, error) {
	c, err := dial(ctx, path)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			c.Close()
		}
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := json.Marshal(Request{Cmd: cmdStandby, PID: pid})
	if _, err := c.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("standby: %w", err)
	}
	unblock := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer unblock()
	r := bufio.NewReader(c)
	var resp Response
	line, err := r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &resp)
	}
	if err == nil && !resp.OK {
		err = errors.New(resp.Error)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("standby: register: %w", err)
	}
	c.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var msg Request
	line, err = r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &msg)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("standby: %w", ErrNoAnswer)
	}
	if msg.Cmd != cmdStop {
		return nil, fmt.Errorf("standby: unexpected message %q", line)
	}
	keep = true
	return c, nil
}

func writeResponse(c net.Conn, r Response) {
	data, _ := json.Marshal(r)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(data, '\n'))
}

// Call sends cmd to the daemon at path and decodes its result into out
// (which may be nil). ErrNotRunning when nothing listens there.
func Call(ctx context.Context, path, cmd string, out any) error {
	c, err := dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = exchange(ctx, c, Request{Cmd: cmd}, out)
	return err
}

// CallWith is Call with arguments: args is sent as the request's Args,
// encoded as JSON.
func CallWith(ctx context.Context, path, cmd string, args, out any) error {
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	c, err := dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = exchange(ctx, c, Request{Cmd: cmd, Args: raw}, out)
	return err
}

// CallAndWait sends cmd and then waits until the daemon process is gone
// (its end of the connection closes) or ctx is done.
func CallAndWait(ctx context.Context, path, cmd string, out any) error {
	c, err := dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	r, err := exchange(ctx, c, Request{Cmd: cmd}, out)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	} else {
		c.SetReadDeadline(time.Time{})
	}
	buf := make([]byte, 64)
	for {
		if _, err := r.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("%s: the daemon has not exited yet: %w", cmd, context.DeadlineExceeded)
			}
			return nil
		}
	}
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("connect to control socket %s: %w", path, err)
	}
	return c, nil
}

func exchange(ctx context.Context, c net.Conn, r0 Request, out any) (*bufio.Reader, error) {
	cmd := r0.Cmd
	dl := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		dl = d
	}
	c.SetDeadline(dl)
	req, _ := json.Marshal(r0)
	if _, err := c.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%s: no answer by %s: %w", cmd, dl.Format(time.TimeOnly), context.DeadlineExceeded)
		}
		// The daemon closed the connection without answering: it died, or
		// it was stopping.
		return nil, fmt.Errorf("%s: the daemon closed the connection without answering: %w", cmd, ErrNoAnswer)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("%s: bad answer: %w", cmd, err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("%s: %s", cmd, resp.Error)
	}
	if out != nil && resp.Result != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return nil, fmt.Errorf("%s: bad result: %w", cmd, err)
		}
	}
	return r, nil
}
