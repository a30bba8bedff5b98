//go:build !unix

package workspace

import "io/fs"

// soleInode reports no inode where files have none to compare.
func soleInode(fs.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }
