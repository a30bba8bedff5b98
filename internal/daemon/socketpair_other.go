//go:build unix && !linux

package daemon

import "syscall"

// socketpair returns a connected pair of Unix stream sockets, both
// close-on-exec. Where socketpair takes no SOCK_CLOEXEC (macOS), the flag
// is set right after, under the fork lock so that no child forked in
// between inherits them.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}
