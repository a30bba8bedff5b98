package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/patchd/patchd/internal/fsutil"
)

// journalFile is what the committer needs of the journal; tests substitute
// a file that fails on demand.
type journalFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	// Datasync makes written data durable without the metadata a read
	// does not need (fdatasync): enough for bytes written over space that
	// is already allocated and inside the file's size.
	Datasync() error
	Truncate(size int64) error
	Close() error
}

// osJournal is the journal as an open file.
type osJournal struct{ *os.File }

func (f osJournal) Datasync() error { return fsutil.Datasync(f.File) }

// openJournal opens the active segment at path and makes sure it starts
// with the file header; name is its label for messages. A header a crash
// cut short is written again and fsynced with its directory before any
// record is acknowledged in the segment.
func openJournal(path, name string) (*os.File, int64, error) {
	dir := filepath.Dir(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, ioFailure("open", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, ioFailure("stat", name, err)
	}
	size := fi.Size()
	if size >= int64(len(fileHeader)) {
		head := make([]byte, len(fileHeader))
		if _, err := f.ReadAt(head, 0); err != nil {
			f.Close()
			return nil, 0, ioFailure("read", name, err)
		}
		if string(head) != fileHeader {
			f.Close()
			return nil, 0, fmt.Errorf("open %s: not a patchd journal (header %q)", name, head)
		}
		return f, size, nil
	}
	// Empty, or cut short while being created: nothing in it was ever
	// acknowledged, as no record follows the header yet.
	head := make([]byte, size)
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, 0, ioFailure("read", name, err)
	}
	if !bytes.HasPrefix([]byte(fileHeader), head) {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: not a patchd journal (%d bytes)", name, size)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(fileHeader), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		f.Close()
		return nil, 0, ioFailure("create", name, err)
	}
	return f, int64(len(fileHeader)), nil
}

// scanResult summarises a journal scan.
type scanResult struct {
	end     int64 // end of the last good record; the file is cut here unless zeroTail
	records int
	damaged bool // bad bytes with good records after them
	// zeroTail: everything after end is zero bytes, space the store
	// allocated ahead (see preallocate); it is kept, not cut.
	zeroTail bool
}

// scanJournal calls fn for every good record from offset from on, in file
// order, with the record's offset. It skips damaged stretches that are followed by good
// records and stops at a bad tail, which it reports through end.
func scanJournal(f io.ReaderAt, from, size int64, name string, log *slog.Logger, fn func(r record, off int64) error) (scanResult, error) {
	res := scanResult{end: from}
	off := res.end
	// The usual tail after a checkpoint is only the zeros written ahead
	// (up to 1 MiB): checked in 64 KiB reads, not through the records'
	// 1 MiB buffer and then again (its allocation alone was ~1 ms of a
	// fresh process's Open). When records follow, the first read says so.
	if zero, err := allZero(f, off, size); err != nil {
		return res, ioFailure("read", name, err)
	} else if zero {
		res.zeroTail = off < size
		return res, nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), int(min(1<<20, max(size-off, 16))))
	var hdr [recHeaderLen]byte
	var payload []byte
	for off < size {
		r, err := readRecord(br, size-off, hdr[:], &payload)
		if err == nil {
			if err := fn(r, off); err != nil {
				return res, fmt.Errorf("replay %s at offset %d: %w", name, off, err)
			}
			res.records++
			off += r.size
			res.end = off
			continue
		}
		if zero, zerr := allZero(f, off, size); zerr != nil {
			return res, ioFailure("read", name, zerr)
		} else if zero {
			res.zeroTail = true
			return res, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", errShort, err)
		}
		if !errors.Is(err, errShort) && !errors.Is(err, errCorrupt) {
			return res, ioFailure("read", name, err)
		}
		next, ferr := findRecord(f, off+1, size)
		if ferr != nil {
			return res, ioFailure("read", name, ferr)
		}
		if next < 0 {
			log.Warn("journal tail damaged; dropping it (likely a write cut short by a crash, never acknowledged)",
				"journal", name, "offset", off, "bytes", size-off, "reason", err)
			return res, nil
		}
		log.Error("journal damaged in the middle; skipping bad bytes",
			"journal", name, "offset", off, "bytes", next-off, "reason", err)
		res.damaged = true
		off = next
		br.Reset(io.NewSectionReader(f, off, size-off))
	}
	return res, nil
}

// zeros is what allZero compares with.
var zeros = make([]byte, 64<<10)

// allZero reports whether f holds only zero bytes from from to size.
func allZero(f io.ReaderAt, from, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off := from; off < size; {
		n := int(min(int64(len(buf)), size-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		if !bytes.Equal(buf[:n], zeros[:n]) {
			return false, nil
		}
		off += int64(n)
	}
	return true, nil
}

// readRecord reads and verifies the next record; *buf is reused for the
// payload and r.meta aliases it.
func readRecord(br *bufio.Reader, remaining int64, hdr []byte, buf *[]byte) (record, error) {
	if remaining < recHeaderLen {
		return record{}, fmt.Errorf("%w: %d bytes left", errShort, remaining)
	}
	if _, err := io.ReadFull(br, hdr); err != nil {
		return record{}, err
	}
	n, err := parseHeader(hdr, remaining)
	if err != nil {
		return record{}, err
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	if _, err := io.ReadFull(br, p); err != nil {
		return record{}, err
	}
	return parsePayload(hdr, p)
}

// findRecord returns the offset of the first good record at or after from,
// or -1. A stray magic number inside data is rejected by the length and
// CRC checks.
func findRecord(f io.ReaderAt, from, size int64) (int64, error) {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], recMagic)
	chunk := make([]byte, 64<<10)
	var hdr [recHeaderLen]byte
	var payload []byte
	for pos := from; pos+recHeaderLen <= size; {
		n, err := f.ReadAt(chunk, pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		data := chunk[:n]
		for i := 0; ; {
			j := bytes.Index(data[i:], magic[:])
			if j < 0 {
				break
			}
			at := pos + int64(i+j)
			br := bufio.NewReader(io.NewSectionReader(f, at, size-at))
			if _, err := readRecord(br, size-at, hdr[:], &payload); err == nil {
				return at, nil
			}
			i += j + 1
		}
		if n < len(chunk) {
			break
		}
		// Overlap so that a magic number split across chunks is seen.
		pos += int64(n) - int64(len(magic)-1)
	}
	return -1, nil
}

// syncDir makes the directory's entries (a created or renamed file)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems (and macOS for F_FULLFSYNC) refuse to sync a
	// directory; there is nothing more that can be done there.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
