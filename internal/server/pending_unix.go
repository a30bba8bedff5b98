//go:build unix

package server

import (
	"net"
	"syscall"
)

// pending reports whether bytes wait in c's receive buffer, unread: a
// request on its way in. It peeks without blocking and without taking the
// read lock the server's own blocked Read holds.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var buf [1]byte
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
