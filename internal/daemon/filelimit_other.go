//go:build !unix

package daemon

// fileLimit is unknown here.
func fileLimit() int { return 0 }
