//go:build !linux

package store

import "os"

// datasync is a full sync where fdatasync is not at hand (on macOS Sync is
// F_FULLFSYNC, which the data needs anyway).
func datasync(f *os.File) error { return f.Sync() }
