//go:build linux || darwin

package workspace

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFileFailsMidWrite makes the data write itself fail, the way a
// full disk would, by lowering the file size limit below the payload. The
// old content must survive, and neither the temporary file nor the new
// directories may remain.
func TestWriteFileFailsMidWrite(t *testing.T) {
	const limit = 64 << 10
	var old syscall.Rlimit
	mustNoErr(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	if old.Cur < limit*4 {
		t.Skipf("file size limit already %d", old.Cur)
	}
	fx := newFixture(t)
	mustNoErr(t, fx.ws.WriteFile("keep/me.txt", []byte("old content\n"), 0))
	before := snapshot(t, fx.wsDir)

	// Without this the kernel kills the process with SIGXFSZ instead of
	// failing the write with EFBIG.
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	lowered := old
	lowered.Cur = limit
	mustNoErr(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lowered))
	big := bytes.Repeat([]byte("x"), 2*limit)
	errReplace := fx.ws.WriteFile("keep/me.txt", big, 0)
	errCreate := fx.ws.WriteFile("fresh/dir/big.txt", big, 0)
	mustNoErr(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))

	if !errors.Is(errReplace, syscall.EFBIG) || !errors.Is(errCreate, syscall.EFBIG) {
		t.Fatalf("WriteFile over the size limit = %v, %v, want EFBIG", errReplace, errCreate)
	}
	got, err := os.ReadFile(filepath.Join(fx.wsDir, "keep", "me.txt"))
	if err != nil || string(got) != "old content\n" {
		t.Errorf("after failed WriteFile, content = %q, %v, want the old content", got, err)
	}
	after := snapshot(t, fx.wsDir)
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("failed WriteFile left %q behind", name)
		}
	}
}
