package server

import (
	"net/http"
	"strconv"

	"github.com/patchd/patchd/internal/api"
)

// handleReadFile is GET /file?path=&start_line=&end_line=: lines of a
// workspace file, numbered (api.Files.ReadFile). The path is a query
// parameter, not a path segment, so a GPT action needs no encoding of its
// slashes.
func (s *Server) handleReadFile(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	q := r.URL.Query()
	start, err := queryInt(q.Get("start_line"), "start_line")
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	end, err := queryInt(q.Get("end_line"), "end_line")
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	ft, err := s.opts.Service.ReadFile(r.Context(), api.ReadFileRequest{Path: q.Get("path"), StartLine: start, EndLine: end})
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, ft)
}

// handleListFiles is GET /files?path=&glob=&limit=: the workspace's files
// under a directory (api.Files.ListFiles).
func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) {
	if !s.requireToken(w, r) {
		return
	}
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit")
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	fl, err := s.opts.Service.ListFiles(r.Context(), api.ListFilesRequest{Path: q.Get("path"), Glob: q.Get("glob"), Limit: limit})
	if err != nil {
		s.refuse(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, fl)
}

// queryInt reads an integer query parameter; "" is 0 (the default). The
// service checks the range.
func queryInt(v, field string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, field, "%s must be a whole number, not %q", field, v)
	}
	return n, nil
}
