//go:build !linux

package sandbox

import "errors"

var errUnsupported = errors.New("the check sandbox needs Linux (Landlock); remove \"sandbox\" from the check or run patchd on Linux 6.7 or later")

// Available reports why checks cannot be confined here: they never can
// outside Linux.
func Available() error { return errUnsupported }

// ABI is the kernel's Landlock ABI version: 0, there is no Landlock.
func ABI() int { return 0 }

// Exe is the executable that runs the helper.
func Exe() (string, error) { return "", errUnsupported }

func confineAndExec(Spec, []string) error { return errUnsupported }
