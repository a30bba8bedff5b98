package patchsvc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/workspace"
)

// ReadFile implements api.Service: the file is opened through the
// workspace's confined Open and read as a stream, one bounded buffer at a
// time, so a large file costs no more memory than the answer.
func (s *Service) ReadFile(ctx context.Context, req api.ReadFileRequest) (api.FileText, error) {
	if err := checkRange(req); err != nil {
		return api.FileText{}, err
	}
	if s.ws == nil {
		return api.FileText{}, api.Errorf(api.KindUnavailable, api.CodeInternal, "", "no workspace to read from")
	}
	f, err := s.ws.Open(req.Path)
	if err != nil {
		return api.FileText{}, s.fileRefusal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return api.FileText{}, s.fileRefusal(err)
	}
	if fi.Size() > api.MaxReadFileBytes {
		return api.FileText{}, api.Errorf(api.KindUnprocessable, api.CodeFileTooLarge, "path",
			"%s is %d bytes, more than the %d bytes read_file reads", req.Path, fi.Size(), api.MaxReadFileBytes)
	}
	ft, err := readLines(ctx, io.LimitReader(f, api.MaxReadFileBytes+1), req)
	if err != nil {
		return api.FileText{}, s.fileRefusal(err)
	}
	ft.Path = path.Clean(req.Path)
	return ft, nil
}

// checkRange refuses a line range that is not one, naming the field.
func checkRange(req api.ReadFileRequest) error {
	switch {
	case req.StartLine < 0:
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "start_line", "start_line must be 1 or more (0 for the first line), not %d", req.StartLine)
	case req.EndLine < 0:
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "end_line", "end_line must be 1 or more (0 for as many lines as one answer holds), not %d", req.EndLine)
	case req.EndLine > 0 && req.EndLine < max(req.StartLine, 1):
		return api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "end_line", "end_line %d is before start_line %d", req.EndLine, max(req.StartLine, 1))
	}
	return nil
}

// fileRefusal maps an error of reading or listing the workspace: the
// path's own code, Kind not_found for a missing one, field path.
func (s *Service) fileRefusal(err error) *api.Error {
	var e *api.Error
	if errors.As(err, &e) {
		return e
	}
	r := refusal{field: "path"}
	switch code := api.CodeOf(err); code {
	case api.CodeFileNotFound:
		r.kind = api.KindNotFound
	case api.CodeFileBinary, api.CodeFileTooLarge:
		r.kind = api.KindUnprocessable
	case workspace.CodeFileChanged:
		r.kind = api.KindConflict
	case workspace.CodeIOFailed, "":
		r.kind, r.field = api.KindInternal, ""
	}
	return s.refuse(r, err)
}

// errBinary is the refusal of a file with a NUL byte.
type errBinary struct{ line int }

func (e errBinary) Error() string {
	return fmt.Sprintf("the file is binary (a NUL byte on line %d); read_file answers text only", e.line)
}
func (e errBinary) Code() string  { return api.CodeFileBinary }
func (e errBinary) Field() string { return "path" }

// readLines reads r to its end: the lines req asks for, within the caps,
// each numbered; every line counted; a NUL byte anywhere is errBinary.
func readLines(ctx context.Context, r io.Reader, req api.ReadFileRequest) (api.FileText, error) {
	start := max(req.StartLine, 1)
	end := req.EndLine // 0: as far as the caps go
	ft := api.FileText{StartLine: start}
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		out       []byte
		line      int // the current line's number
		atStart   = true
		showing   = false
		done      = false // the answer is complete (range or caps)
		lineStart int     // len(out) when the current line began
		encoded   int     // out as JSON encodes it, in bytes
		lineEnc   int     // encoded when the current line began
		reads     int
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if reads++; reads%64 == 0 && ctx.Err() != nil {
				return api.FileText{}, ctx.Err()
			}
			if atStart {
				line++
				atStart = false
				showing = false
				if !done && line >= start {
					if line-start >= api.MaxReadLines || encoded >= api.MaxReadBytes {
						ft.Truncated, done = true, true
					} else {
						showing = true
						lineStart, lineEnc = len(out), encoded
						prefix := fmt.Sprintf("%6d\t", line)
						out = append(out, prefix...)
						encoded += jsonLen([]byte(prefix))
						ft.EndLine = line
					}
				}
			}
			if bytes.IndexByte(chunk, 0) >= 0 {
				return api.FileText{}, errBinary{line: line}
			}
			if showing {
				if n := jsonLen(chunk); encoded+n <= api.MaxReadBytes {
					out = append(out, chunk...)
					encoded += n
				} else if lineStart == 0 {
					// The first line alone is over the cap: show what
					// fits, cut at a rune, and say so.
					keep := fitJSON(chunk, api.MaxReadBytes-encoded)
					out = append(out, keep...)
					encoded = api.MaxReadBytes
					showing, done, ft.Truncated = false, true, true
					ft.Note = fmt.Sprintf("line %d is longer than one answer holds (%d bytes as JSON); it is cut here", line, api.MaxReadBytes)
				} else {
					// Drop the part of this line shown so far: an
					// answer ends at a line boundary.
					out, encoded = out[:lineStart], lineEnc
					ft.EndLine = line - 1
					showing, done, ft.Truncated = false, true, true
				}
			}
			if chunk[len(chunk)-1] == '\n' {
				atStart = true
				if showing && end > 0 && line >= end {
					showing, done = false, true
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return api.FileText{}, err
		}
	}
	ft.TotalLines = line
	if line > 0 && start > line {
		return api.FileText{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "start_line",
			"start_line %d is past the end of the file, which has %d lines", start, line)
	}
	if line == 0 && start > 1 {
		return api.FileText{}, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "start_line",
			"start_line %d is past the end of the file, which is empty", start)
	}
	if ft.EndLine == 0 {
		ft.EndLine = start - 1
	}
	if ft.Truncated && ft.Note == "" {
		ft.Note = fmt.Sprintf("lines %d-%d of %d shown (an answer holds at most %d lines and %d bytes of text); ask again with start_line=%d for the rest",
			start, ft.EndLine, line, api.MaxReadLines, api.MaxReadBytes, ft.EndLine+1)
	} else if ft.Truncated {
		ft.Note += fmt.Sprintf("; the file has %d lines, and start_line=%d reads on after this one", line, ft.EndLine+1)
	}
	ft.Text = string(out)
	return ft, nil
}

// jsonLen is how many bytes encoding/json (with HTML escaping off, as the
// server writes) makes of b inside a string.
func jsonLen(b []byte) int {
	n := 0
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20:
				n += 6
			default:
				n++
			}
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		b = b[size:]
	}
	return n
}

// fitJSON returns the longest prefix of b, cut at a rune, whose JSON
// encoding takes at most room bytes.
func fitJSON(b []byte, room int) []byte {
	n, i := 0, 0
	for i < len(b) {
		_, size := utf8.DecodeRune(b[i:])
		if c := jsonLen(b[i : i+size]); n+c <= room {
			n += c
			i += size
			continue
		}
		break
	}
	return b[:i]
}
