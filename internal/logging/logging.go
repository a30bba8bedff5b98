// Package logging builds patchd's logger: human-readable text on the
// console, JSON lines in the rotated log file, both from one *slog.Logger.
package logging

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Level parses a level name; unknown names mean info (config validates them).
func Level(name string) slog.Level {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Console returns a text logger on w (nil w: a logger that drops everything).
func Console(w io.Writer, level string) *slog.Logger {
	if w == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: Level(level)}))
}

// File is the rotated JSON log file.
type File struct {
	lj *lumberjack.Logger
	h  slog.Handler
}

// OpenFile opens (creating its directory) the JSON log at path, rotated at
// maxMB and keeping a few compressed backups.
func OpenFile(path string, maxMB int, level string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	lj := &lumberjack.Logger{Filename: path, MaxSize: maxMB, MaxBackups: 5, Compress: true}
	return &File{lj: lj, h: slog.NewJSONHandler(lj, &slog.HandlerOptions{Level: Level(level)})}, nil
}

// Close flushes and closes the file.
func (f *File) Close() error { return f.lj.Close() }

// Tee returns a logger writing to both the console logger's handler and the
// file.
func (f *File) Tee(console *slog.Logger) *slog.Logger {
	return slog.New(slog.NewMultiHandler(console.Handler(), f.h))
}
