package api

import "context"

// Files is the part of the application API that reads the workspace: what
// an agent needs to write an edit that matches (the text, with line
// numbers) and to find the files it means. Both are confined exactly as a
// patch's paths are: no absolute path, no "..", no symbolic link leading
// out, nothing under .git, none of patchd's own files, only regular files.
type Files interface {
	// ReadFile answers lines of a workspace file, each prefixed with its
	// number (right-aligned in 6 columns, then a tab, as `cat -n` prints
	// it). An answer holds at most MaxReadLines lines and MaxReadBytes of
	// text; a longer range is cut at a line boundary, with Truncated set
	// and a Note saying which start_line reads on. A file over
	// MaxReadFileBytes is refused (file_too_large), one with a NUL byte is
	// binary (file_binary), a missing one file_not_found.
	ReadFile(ctx context.Context, req ReadFileRequest) (FileText, error)
	// ListFiles answers the regular files under a directory of the
	// workspace (its root by default), sorted, optionally those matching
	// a glob, leaving out what the workspace's .gitignore files exclude,
	// .git, patchd's own files and symbolic links (never followed). At
	// most Limit paths and MaxListBytes of them; more is Truncated, with
	// a Note.
	ListFiles(ctx context.Context, req ListFilesRequest) (FileList, error)
}

// ReadFileRequest asks for lines of a workspace file.
type ReadFileRequest struct {
	// Path is relative to the workspace root, as a patch's target_file.
	Path string
	// StartLine is the first line to answer, from 1; 0 means 1.
	StartLine int
	// EndLine is the last line to answer, inclusive; 0 means as many as
	// the caps allow. One past the end of the file is not an error: the
	// answer ends with the file.
	EndLine int
}

// FileText is lines of a file (read_file, GET /file).
type FileText struct {
	Path string `json:"path"` // as asked, cleaned
	// StartLine and EndLine are the lines Text holds (EndLine is
	// StartLine-1 when it holds none: an empty file).
	StartLine  int `json:"start_line"`
	EndLine    int `json:"end_line"`
	TotalLines int `json:"total_lines"` // the file's lines; a last line without a newline counts
	// Text is the lines, each as "%6d\t" and the line with its own line
	// ending; a last line without one has none.
	Text string `json:"text"`
	// Truncated says the range asked for (or the file, with no EndLine)
	// goes on past EndLine; Note says how to read the rest.
	Truncated bool   `json:"truncated"`
	Note      string `json:"note,omitempty"`
}

// ListFilesRequest asks for the files under a directory.
type ListFilesRequest struct {
	// Path is the directory, relative to the workspace root; "" or "."
	// is the root. Named explicitly, it is listed even where .gitignore
	// excludes it (the rules still apply inside it).
	Path string
	// Glob keeps the files whose path relative to Path matches it:
	// path.Match syntax for each slash-separated segment ("*", "?",
	// "[a-z]", "\\" escapes), and "**" as a whole segment for any number
	// of directories, so "**/*.go" is every Go file and "cmd/*/main.go"
	// one level. A segment matches one name: "*.go" is the top level
	// only. "" keeps every file.
	Glob string
	// Limit is the most paths to answer, from 1 to MaxListFilesLimit; 0
	// means MaxListFilesLimit.
	Limit int
}

// FileList is the files under a directory (list_files, GET /files).
type FileList struct {
	// Files are paths relative to the workspace root, in byte order: a
	// truncated list is the first of them.
	Files []string `json:"files"`
	// Truncated says there are more; Note says why it stopped and how
	// to narrow the request (a deeper path, a glob).
	Truncated bool   `json:"truncated"`
	Note      string `json:"note,omitempty"`
}

// The caps of ReadFile and ListFiles. The byte caps keep an answer under
// the 100,000 characters a GPT action takes, JSON escapes included.
const (
	// MaxReadLines is the most lines one ReadFile answers.
	MaxReadLines = 2000
	// MaxReadBytes bounds the Text of one ReadFile, as JSON encodes it
	// (a tab is two bytes there, a control character six). A line
	// longer than that alone is cut, with a note.
	MaxReadBytes = 64 << 10
	// MaxReadFileBytes is the largest file ReadFile reads (every line is
	// counted for total_lines and checked for a NUL byte).
	MaxReadFileBytes = 64 << 20
	// MaxListFilesLimit is the most paths one ListFiles answers.
	MaxListFilesLimit = 1000
	// MaxListBytes bounds the paths of one ListFiles, as JSON encodes
	// them.
	MaxListBytes = 64 << 10
	// MaxGlobLen is the longest glob ListFiles takes, in bytes.
	MaxGlobLen = 1024
)

// Codes of ReadFile and ListFiles (with the path codes above).
const (
	CodeFileNotFound = "file_not_found" // no such file or directory (Kind not_found)
	CodeFileBinary   = "file_binary"    // a NUL byte: not text (Kind unprocessable)
	CodeNotDirectory = "path_not_directory"
)
