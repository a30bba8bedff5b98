//go:build unix

package workspace

import (
	"io/fs"
	"syscall"
)

// soleInode returns the device and inode of a file that has one link.
func soleInode(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink != 1 {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}
