// Package gctune sets the Go garbage collector's defaults for patchd's
// long-running processes (the daemon and the gateway).
//
// Go's default (GOGC=100, no memory limit) collects each time the heap
// doubles. patchd's live heap is small (a few MiB: the live patches, the
// entries changed since the last checkpoint), so under a burst of patches
// it collected many times a second: about 7% of the daemon's CPU per
// acknowledged patch at 64 clients (bench/notes.md, issue 13). patchd lets
// the heap grow to five times its live size instead, and caps the runtime's
// memory with a soft limit, so that a long history under load still stays
// within its memory goal: the collector runs earlier as the limit nears.
package gctune

import "runtime/debug"

const (
	// Percent is the GOGC patchd runs with unless GOGC is set.
	Percent = 400
	// Limit is the soft memory limit (bytes of the Go runtime's memory:
	// heap, stacks, runtime structures) patchd runs with unless
	// GOMEMLIMIT is set. Live memory above it (a patch holding more file
	// content, up to max-patch-content) is allowed: the collector then
	// runs more often, at most about half the CPU, until it is freed.
	Limit = 80 << 20
)

// Apply sets the collector's percent and soft memory limit to Percent and
// Limit, each unless the environment (getenv: os.Getenv) sets it: the Go
// runtime reads GOGC and GOMEMLIMIT itself at start, and a user's setting
// wins.
func Apply(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(Limit)
	}
}
