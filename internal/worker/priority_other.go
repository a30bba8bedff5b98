//go:build !linux

package worker

// lowerPriority does nothing where threads have no priority of their own
// that a process may set (setpriority takes a thread id only on Linux).
func lowerPriority() error { return nil }
