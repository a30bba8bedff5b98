//go:build !linux

package listen

// PortHolder returns a description of a process listening on TCP port, or ""
// when the system cannot tell. Only Linux exposes the socket table and
// process fds cheaply and without privileges (through /proc), so elsewhere
// it always returns "".
func PortHolder(port int) string {
	return ""
}
