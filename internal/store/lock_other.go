//go:build !unix

package store

import "os"

// lockFile is a no-op where flock does not exist; patchd's instance lock
// still keeps a second daemon away.
func lockFile(*os.File) error { return nil }
