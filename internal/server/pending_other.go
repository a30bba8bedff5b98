//go:build !unix

package server

import "net"

// pending cannot tell here; the connection is taken as having nothing
// unread.
func pending(c net.Conn) bool { return false }
