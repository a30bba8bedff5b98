//go:build unix

package listen

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// adopt turns an inherited fd into a listener. On success the fd itself is
// closed (the listener holds its own duplicate); on failure it is left open,
// so that a caller that misnamed an fd does not lose it.
func adopt(fd int) (net.Listener, error) {
	// Before anything else, so that a child started by another goroutine
	// meanwhile cannot inherit the socket and keep the port bound.
	syscall.CloseOnExec(fd)

	// Checked here rather than left to Accept, so that a wrong fd fails at
	// start-up with a clear reason instead of on the first connection.
	acc, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("check socket: %w", err)
	}
	if acc == 0 {
		return nil, errNotListening
	}

	// os.NewFile would close fd when its File is closed or collected,
	// also when net.FileListener fails; a duplicate keeps fd out of it.
	syscall.ForkLock.RLock()
	dup, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(dup)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	f := os.NewFile(uintptr(dup), "inherited fd "+strconv.Itoa(fd))
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	syscall.Close(fd)
	return l, nil
}
