// Package version holds patchd's release version, the one value every
// command, the state file and /health report.
package version

// Version is patchd's release version. It is a constant, not an ldflags
// variable, so `go run` and `go build` report the same thing.
const Version = "0.1.0"
