package server

import "github.com/patchd/patchd/internal/api"

// The OpenAPI operations and schemas of GET /file and GET /files.

func readFileOp() obj {
	return readOnly(obj{
		"operationId": "readFile",
		"summary":     "Read a workspace file with line numbers",
		"description": "Lines of a file, each prefixed with its number and a tab, to copy exact text into a patch's search. At most 2000 lines and 64 KiB a call: when truncated is true, call again with start_line as the note says. Paths are relative to the workspace root.",
		"parameters": []obj{
			{"name": "path", "in": "query", "required": true, "schema": strSchema(), "description": "The file, relative to the workspace root (src/app.py)."},
			{"name": "start_line", "in": "query", "schema": obj{"type": "integer", "minimum": 1}, "description": "First line to read, from 1 (default 1)."},
			{"name": "end_line", "in": "query", "schema": obj{"type": "integer", "minimum": 1}, "description": "Last line to read, inclusive (default: as many as one answer holds)."},
		},
		"responses": obj{
			"200": resp("The lines.", ref("FileText")),
			"400": errResp("A path outside the workspace, in .git or patchd's own files, a symbolic link or a directory; or a bad start_line or end_line (result.field names it)."),
			"404": errResp("No such file."),
			"422": errResp("A binary file (file_binary) or one over 64 MiB (file_too_large)."),
			"401": errResp("Unauthorized."),
		},
	})
}

func listFilesOp() obj {
	return readOnly(obj{
		"operationId": "listFiles",
		"summary":     "List workspace files",
		"description": "Paths of the files under a directory (default the workspace root), sorted, leaving out what .gitignore excludes, .git and symbolic links. glob filters them: *.go is the top level only, **/*.go every depth, src/**/*.ts under src. At most 1000 paths: truncated says there are more.",
		"parameters": []obj{
			{"name": "path", "in": "query", "schema": strSchema(), "description": "The directory, relative to the workspace root (default the root)."},
			{"name": "glob", "in": "query", "schema": strSchema(), "description": "Keep the paths, relative to path, that match: * ? [a-z] within a segment, ** for any number of directories."},
			{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": api.MaxListFilesLimit, "default": api.MaxListFilesLimit}},
		},
		"responses": obj{
			"200": resp("The paths.", ref("FileList")),
			"400": errResp("A path outside the workspace, in .git or patchd's own files, or a file; a bad glob or limit (result.field names it)."),
			"404": errResp("No such directory."),
			"401": errResp("Unauthorized."),
		},
	})
}

// fileSchemas are the schemas of the answers of readFile and listFiles.
func fileSchemas() obj {
	return obj{
		"FileText": obj{
			"type": "object",
			"properties": obj{
				"path": strSchema(), "start_line": obj{"type": "integer"}, "end_line": obj{"type": "integer"},
				"total_lines": obj{"type": "integer"},
				"text":        obj{"type": "string", "description": "The lines, each as its number right-aligned in 6 columns, a tab, and the line."},
				"truncated":   obj{"type": "boolean", "description": "More lines follow; the note names the start_line to ask for."},
				"note":        strSchema(),
			},
		},
		"FileList": obj{
			"type": "object",
			"properties": obj{
				"files":     obj{"type": "array", "items": strSchema(), "description": "Paths relative to the workspace root, sorted."},
				"truncated": obj{"type": "boolean", "description": "More files match; narrow with path or glob."},
				"note":      strSchema(),
			},
		},
	}
}

// merged is a with b's entries added.
func merged(a, b obj) obj {
	for k, v := range b {
		a[k] = v
	}
	return a
}
