package workspace

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadAllSized checks that a file is read whole whatever Stat said of
// its size: the same, smaller (it grew since), larger (it shrank), or
// nonsense; and that a read error is returned, not a short read.
func TestReadAllSized(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for _, hint := range []int64{int64(len(data)), 0, 1, 100, int64(len(data)) - 1, int64(len(data)) * 3, -5, 1 << 40} {
		for _, name := range []string{"plain", "one byte a read", "half reads"} {
			var r io.Reader = bytes.NewReader(data)
			switch name {
			case "one byte a read":
				r = iotest.OneByteReader(r)
			case "half reads":
				r = iotest.HalfReader(r)
			}
			got, err := readAllSized(r, hint)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("readAllSized(%s, hint %d) = %d bytes, %v; want all %d bytes", name, hint, len(got), err, len(data))
			}
		}
	}
	if got, err := readAllSized(bytes.NewReader(nil), 0); err != nil || len(got) != 0 || got == nil {
		t.Errorf("readAllSized(empty) = %q (nil: %v), %v; want an empty non-nil slice", got, got == nil, err)
	}
	boom := errors.New("disk on fire")
	if _, err := readAllSized(iotest.TimeoutReader(bytes.NewReader(data)), int64(len(data))); err == nil {
		t.Errorf("readAllSized with a failing second read: no error")
	}
	if _, err := readAllSized(iotest.ErrReader(boom), 10); !errors.Is(err, boom) {
		t.Errorf("readAllSized(ErrReader) error = %v, want %v", err, boom)
	}
}

func BenchmarkReadAllSized1MiB(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := readAllSized(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
