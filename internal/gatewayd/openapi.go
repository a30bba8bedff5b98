package gatewayd

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// serveOpenAPI serves a workspace's OpenAPI document: the bound server's,
// whose servers entry (the root's address) gets the workspace's prefix,
// so that a client built from it (a GPT action) calls the workspace's
// routes. Any other answer (a refused Host) passes as it is.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, h http.Handler, prefix string) {
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	if rec.code == http.StatusOK {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err == nil {
			if servers, ok := doc["servers"].([]any); ok {
				for _, sv := range servers {
					if m, ok := sv.(map[string]any); ok {
						if u, ok := m["url"].(string); ok {
							m["url"] = u + prefix
						}
					}
				}
				if b, err := json.Marshal(doc); err == nil {
					body = b
				}
			}
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.code)
	w.Write(body)
}

// recorder keeps an answer to rewrite it.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
