//go:build !linux && !darwin

package fsutil

import "errors"

// FreeBytes is not known here.
func FreeBytes(path string) (uint64, error) {
	return 0, errors.New("free space unknown on this system")
}
