//go:build linux || darwin

package fsutil

import "syscall"

// FreeBytes is how many bytes an unprivileged writer can still put on the
// file system that holds path.
func FreeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
