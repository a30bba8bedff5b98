// Package sandbox runs a check confined: on Linux, patchd re-executes
// itself as a helper (Subcommand) that restricts itself with Landlock and
// then executes the check, which inherits the restriction with everything
// it starts:
//
//   - writes only beneath the workspace, the check's private temporary
//     directory, the directories the config file names, and /dev/null; and
//     never to the protected paths (the state directory, the config file,
//     the workspace's .git), even when they lie in the workspace;
//   - no TCP connect or bind (Landlock ABI 4, Linux 6.7), and, through a
//     seccomp filter, no socket but Unix, netlink and plain TCP ones (no
//     UDP, no Multipath TCP), no io_uring, no system call of another ABI;
//     from Landlock ABI 6 no signal to a process outside the sandbox
//     (patchd) and no abstract Unix socket outside it; from ABI 9 no
//     connect to a pathname Unix socket made outside it;
//   - no capabilities: a patchd running as root hands none to the check.
//
// Reads are not restricted. Landlock was chosen over bubblewrap or user
// namespaces because it needs no setuid helper, no extra package and no
// unprivileged user namespaces (which many systems disable), and applies to
// an unprivileged process on any Linux from 6.7. A kernel without it (ABI
// below 4, or Landlock off) makes the helper fail, and with it the check
// and the patch: a check that asked for the sandbox never runs without it.
package sandbox

import (
	"errors"
	"fmt"
)

// Subcommand is the hidden first argument that makes patchd the helper.
const Subcommand = "__check-sandbox"

// ExitCode is the helper's exit status when it could not confine or start
// the check (the shell's "cannot execute").
const ExitCode = 126

// Spec is what a confined check may write.
type Spec struct {
	// Writable are directories the check may write beneath.
	Writable []string
	// Protect are paths the check may not write, even beneath a writable
	// directory: neither change nor create nor remove them.
	Protect []string
}

// Args are the arguments of the helper (after the executable) that runs
// argv confined by s.
func Args(s Spec, argv []string) []string {
	args := []string{Subcommand}
	for _, d := range s.Writable {
		args = append(args, "--write", d)
	}
	for _, p := range s.Protect {
		args = append(args, "--protect", p)
	}
	return append(append(args, "--"), argv...)
}

// Main is the helper: args are what Args returned, less Subcommand. It
// returns only on failure, having executed the check otherwise.
func Main(args []string) error {
	var s Spec
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return fmt.Errorf("check sandbox: %s without a value", args[0])
		}
		switch args[0] {
		case "--write":
			s.Writable = append(s.Writable, args[1])
		case "--protect":
			s.Protect = append(s.Protect, args[1])
		default:
			return fmt.Errorf("check sandbox: unknown argument %q", args[0])
		}
		args = args[2:]
	}
	if len(args) < 2 {
		return errors.New("check sandbox: no command")
	}
	return confineAndExec(s, args[1:])
}
