//go:build !linux

package notify

import "errors"

// monotonicUsec has no use off Linux, where no systemd listens; Reloading
// then sends RELOADING=1 alone.
func monotonicUsec() (uint64, error) {
	return 0, errors.New("CLOCK_MONOTONIC not available on this system")
}
