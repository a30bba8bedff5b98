//go:build unix

package store

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f, which the kernel releases when
// the process dies, so a crashed owner never blocks the next one.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
