//go:build unix

package daemon

import "syscall"

// fileLimit is the process's soft limit on open files (Go raises it to the
// hard limit at start), 0 if unknown.
func fileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
