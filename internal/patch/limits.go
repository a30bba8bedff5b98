package patch

import (
	"context"
	"fmt"
	"math"
)

// Limits bound what planning one block may hold in memory. A zero field is
// no limit. Plan enforces them while it produces content, before the
// allocation that would pass them, not after.
type Limits struct {
	// MaxFileBytes bounds each file: as read, and as every edit leaves it.
	MaxFileBytes int64
	// MaxPatchBytes bounds the file content the block holds at any moment:
	// every file it read, plus the new content of every file it changed.
	MaxPatchBytes int64
	// FileSetting and PatchSetting name the settings that raise the
	// limits, for the messages of LimitError ("" to name none).
	FileSetting, PatchSetting string
}

// limitError is a LimitError on limit, naming its setting.
func (l Limits) limitError(limit, file string) LimitError {
	e := LimitError{Limit: limit, File: file, Max: l.MaxFileBytes, Setting: l.FileSetting}
	if limit == LimitPatch {
		e.Max, e.Setting = l.MaxPatchBytes, l.PatchSetting
	}
	return e
}

// The limits a LimitError names.
const (
	LimitFile  = "file"  // Limits.MaxFileBytes
	LimitPatch = "patch" // Limits.MaxPatchBytes
)

// LimitError reports a block that would pass one of its Limits. The block
// fails; nothing about it is the daemon's fault.
type LimitError struct {
	Limit string // LimitFile or LimitPatch
	Max   int64  // the limit, in bytes
	File  string // the file being read or produced
	Size  int64  // the file's size when it is known to be over (a read), else 0
	// Setting names the setting that raises the limit, for the message
	// (from Limits; this package does not know the settings).
	Setting string
}

func (e *LimitError) Error() string {
	var s string
	switch {
	case e.Limit == LimitPatch:
		s = fmt.Sprintf("the patch would hold more than %s of file content (what it reads and writes, up to %s), the most one patch may", FormatBytes(e.Max), e.File)
	case e.Size > 0:
		size, lim := FormatBytes(e.Size), FormatBytes(e.Max)
		if size == lim {
			size, lim = fmt.Sprintf("%d bytes", e.Size), fmt.Sprintf("%d bytes", e.Max)
		}
		s = fmt.Sprintf("%s is %s, larger than %s, the largest file a patch may read or write", e.File, size, lim)
	default:
		s = fmt.Sprintf("%s would grow past %s, the largest file a patch may read or write", e.File, FormatBytes(e.Max))
	}
	if e.Setting != "" {
		s += " (setting " + e.Setting + ")"
	}
	return s
}

// Code returns CodePatchTooLarge for the patch limit, CodeFileTooLarge
// for the file limit.
func (e *LimitError) Code() string {
	if e.Limit == LimitPatch {
		return CodePatchTooLarge
	}
	return CodeFileTooLarge
}

// FormatBytes writes a size the way the settings take it: "64 MiB",
// "1.5 GiB", "300 bytes".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	if v == math.Trunc(v) {
		s = fmt.Sprintf("%.0f", v)
	}
	return s + " " + [...]string{"KiB", "MiB", "GiB", "TiB"}[i]
}

// room is how large the content an edit produces for one file may grow,
// and the error for passing it.
type room struct {
	max   int64
	limit LimitError // the error to return, Max and Limit set
}

// unlimitedRoom is the room of an edit run outside a plan (Regex.Apply).
func unlimitedRoom() room { return room{max: math.MaxInt64} }

// over reports whether size passes the room, as the error to return.
func (r room) over(size int64) error {
	if size <= r.max {
		return nil
	}
	e := r.limit
	return &e
}

// stopper tells long loops that planning was cancelled (a stop, or the
// time budget spent): they check it now and then and give up.
type stopper struct {
	ctx  context.Context
	done <-chan struct{}
}

// stopped returns the context's error once it is done, cheaply.
func (s stopper) stopped() error {
	if s.done == nil {
		return nil
	}
	select {
	case <-s.done:
		return fmt.Errorf("planning stopped: %w", context.Cause(s.ctx))
	default:
		return nil
	}
}

// abort carries an error out of a callback of the regexp package, which
// has no way to stop a replacement midway; Regex.apply recovers it.
type abort struct{ err error }

func recoverAbort(err *error) {
	if r := recover(); r != nil {
		a, ok := r.(abort)
		if !ok {
			panic(r)
		}
		*err = a.err
	}
}
