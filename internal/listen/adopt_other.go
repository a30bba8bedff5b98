//go:build !unix

package listen

import (
	"fmt"
	"net"
	"runtime"
)

// adopt reports that inheriting sockets by fd number is not supported:
// neither systemd nor fd passing through exec exists outside Unix.
func adopt(fd int) (net.Listener, error) {
	return nil, fmt.Errorf("fd %d: inherited sockets not supported on %s", fd, runtime.GOOS)
}
