package notify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Environment variables Node's child_process sets for a child spawned with
// an "ipc" stdio entry, which is how PM2 starts every app in fork mode,
// binaries (interpreter "none") included.
const (
	EnvNodeChannelFD            = "NODE_CHANNEL_FD"
	EnvNodeChannelSerialization = "NODE_CHANNEL_SERIALIZATION_MODE"
)

// pm2WriteTimeout bounds one message: PM2 reads its end from an event loop
// that may be busy or gone, and readiness is never worth a hang.
const pm2WriteTimeout = 5 * time.Second

// pm2MaxMessage is the longest line from PM2 that is decoded; longer ones
// are skipped. PM2's own messages are a few hundred bytes.
const pm2MaxMessage = 64 << 10

// PM2 talks to PM2's IPC channel when NODE_CHANNEL_FD is set.
//
// The channel is the child end of a unix stream socketpair. Its framing is
// Node's "json" serialization: one JSON value per message, followed by
// "\n". PM2 (with wait_ready) considers an app ready when a message equal to
// the string "ready" arrives, exactly what Node's process.send('ready')
// writes. The channel also carries messages from PM2: with
// shutdown_with_message it asks the app to stop by sending "shutdown"
// instead of SIGINT; ShutdownRequested reports that.
//
// Safe for concurrent use.
type PM2 struct {
	f            *os.File // nil when disabled
	err          error    // why NODE_CHANNEL_FD was set but unusable
	writeTimeout time.Duration

	mu     sync.Mutex // serializes writes against Close
	closed bool

	shutdown     chan struct{}
	shutdownOnce sync.Once
	readerDone   chan struct{}
}

// NewPM2 reads NODE_CHANNEL_FD and takes ownership of that descriptor: it
// is marked close-on-exec so no child inherits PM2's channel, and
// non-blocking so writes can have a deadline. Call it once per process and
// then UnsetPM2Env, as Node does, because the number would mean nothing (or
// something else) in a child. A value that does not name a unix stream
// socket leaves the PM2 disabled; Err says why.
func NewPM2() *PM2 {
	p := &PM2{writeTimeout: pm2WriteTimeout, shutdown: make(chan struct{})}
	v := os.Getenv(EnvNodeChannelFD)
	if v == "" {
		return p
	}
	// "advanced" is V8's structured-clone format, which only Node speaks.
	if mode := os.Getenv(EnvNodeChannelSerialization); mode != "" && mode != "json" {
		p.err = fmt.Errorf("pm2 ipc: %s=%q is not supported, only json", EnvNodeChannelSerialization, mode)
		return p
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		p.err = fmt.Errorf("pm2 ipc: invalid %s=%q", EnvNodeChannelFD, v)
		return p
	}
	if err := checkIPCSocket(fd); err != nil {
		p.err = fmt.Errorf("pm2 ipc: %s=%d: %w", EnvNodeChannelFD, fd, err)
		return p
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		p.err = fmt.Errorf("pm2 ipc: set non-blocking on fd %d: %w", fd, err)
		return p
	}
	// A non-blocking descriptor makes os.NewFile register it with the
	// runtime poller: deadlines work and Close wakes the reader.
	p.f = os.NewFile(uintptr(fd), "pm2-ipc")
	p.readerDone = make(chan struct{})
	go p.read()
	return p
}

// checkIPCSocket refuses descriptors that cannot be Node's channel, so that
// a NODE_CHANNEL_FD inherited by mistake (a child of ours, where fd 3 is a
// listener passed on for a restart) is never written to or altered.
func checkIPCSocket(fd int) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err
	}
	if uint32(st.Mode)&syscall.S_IFMT != syscall.S_IFSOCK {
		return fmt.Errorf("not a socket")
	}
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		return err
	}
	if typ != syscall.SOCK_STREAM {
		return fmt.Errorf("not a stream socket")
	}
	if listening, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err == nil && listening != 0 {
		return fmt.Errorf("a listening socket")
	}
	return nil
}

// Enabled reports whether the channel is open and usable.
func (p *PM2) Enabled() bool { return p.f != nil }

// Err tells why NODE_CHANNEL_FD was set but the channel is not used; nil
// when it is used or was never offered.
func (p *PM2) Err() error { return p.err }

// Ready sends "ready" as Node would for process.send('ready'), which is
// what PM2's wait_ready waits for (until listen_timeout).
func (p *PM2) Ready() error { return p.send("ready") }

// send writes one message in Node's json framing. Only valid JSON may go
// out: Node parses every line and a bad one is an exception in PM2.
func (p *PM2) send(msg any) error {
	if p.f == nil {
		return nil
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("pm2 ipc: %w", err)
	}
	b = append(b, '\n')
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("pm2 ipc: send %s: %w", b[:len(b)-1], os.ErrClosed)
	}
	if err := p.f.SetWriteDeadline(time.Now().Add(p.writeTimeout)); err != nil {
		return fmt.Errorf("pm2 ipc: %w", err)
	}
	if _, err := p.f.Write(b); err != nil {
		return fmt.Errorf("pm2 ipc: send %s: %w", b[:len(b)-1], err)
	}
	return nil
}

// ShutdownRequested is closed when PM2 asks for a graceful stop by message
// (shutdown_with_message). It never closes when PM2 is absent.
func (p *PM2) ShutdownRequested() <-chan struct{} { return p.shutdown }

// read drains messages from PM2. Reading at all matters: unread messages
// would pile up in the socket buffer until PM2's writes stall.
func (p *PM2) read() {
	defer close(p.readerDone)
	r := bufio.NewReaderSize(p.f, pm2MaxMessage)
	skipping := false
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			skipping = true
			continue
		}
		if err != nil {
			// EOF: PM2 closed its end (it died or disconnected us); we
			// keep running, as a Node app would.
			return
		}
		if skipping {
			skipping = false
			continue
		}
		var msg any
		if json.Unmarshal(line, &msg) != nil {
			continue
		}
		if msg == "shutdown" {
			p.shutdownOnce.Do(func() { close(p.shutdown) })
		}
	}
}

// Close closes the channel and waits for the reader to stop. PM2 treats a
// closed channel as a disconnect, not as an exit.
func (p *PM2) Close() error {
	if p.f == nil {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.f.Close()
	p.mu.Unlock()
	<-p.readerDone
	if err != nil {
		return fmt.Errorf("pm2 ipc: close: %w", err)
	}
	return nil
}

// UnsetPM2Env removes Node's channel variables from this process's
// environment, as Node itself does at startup, so that a child never takes
// an unrelated descriptor for PM2's channel.
func UnsetPM2Env() {
	os.Unsetenv(EnvNodeChannelFD)
	os.Unsetenv(EnvNodeChannelSerialization)
}
