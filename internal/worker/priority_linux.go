package worker

import (
	"runtime"
	"syscall"
)

// workerNice is the nice value of the worker's thread. Applying a patch
// costs far more CPU than acknowledging one (reading and planning the
// file, hashing, creating and syncing files), and under a burst the
// worker always has work: at the default priority it takes a whole core's
// share from the goroutines answering webhooks, and acknowledgements wait
// behind it. At +10 the kernel gives the worker about a tenth of a
// contended core, and all of an idle one, so patches still apply at full
// speed when nothing else wants the CPU. Checks the worker runs (and git)
// inherit the priority: they are background work too.
const workerNice = 10

// lowerPriority moves the calling goroutine onto a thread of its own and
// lowers that thread's priority. The goroutine must never unlock the
// thread: when it exits, the runtime ends the thread rather than reuse it
// at the lowered priority for other goroutines.
func lowerPriority() error {
	runtime.LockOSThread()
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), workerNice)
}
