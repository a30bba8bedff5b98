//go:build !unix

package fsutil

import "io/fs"

func ownerOf(fs.FileInfo) (int, bool) { return 0, false }

func euid() int { return -1 }

func lookupName(int) string { return "" }
