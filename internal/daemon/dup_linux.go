package daemon

import "syscall"

// dup2 makes newfd a copy of oldfd (Dup2 is missing on some Linux ports).
func dup2(oldfd, newfd int) error { return syscall.Dup3(oldfd, newfd, 0) }
