//go:build unix

package workspace

import (
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives the new file the old file's owner and group. It matters
// when the daemon runs as root (a system service) and edits a developer's
// files: without it every patched file would become root's. It is best
// effort: an unprivileged daemon may not change the owner, and the write
// should not fail for that.
func keepOwner(f *os.File, old fs.FileInfo) {
	want, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	cur, err := f.Stat()
	if err != nil {
		return
	}
	have, ok := cur.Sys().(*syscall.Stat_t)
	if !ok || (have.Uid == want.Uid && have.Gid == want.Gid) {
		return
	}
	_ = f.Chown(int(want.Uid), int(want.Gid))
}
