//go:build !linux

package fsutil

import "os"

// Datasync is a full sync where fdatasync is not at hand (on macOS Sync
// is F_FULLFSYNC, which the data needs anyway).
func Datasync(f *os.File) error { return f.Sync() }
