package server

import (
	"net"
	"net/http"
	"strconv"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/version"
)

// obj is shorthand for the JSON objects of the OpenAPI document.
type obj = map[string]any

// openAPI returns the OpenAPI 3.1 document of the API. serverURL is where
// clients reach us, so the document pastes straight into a custom GPT
// action (which needs a servers entry and a bearer security scheme).
func openAPI(serverURL string) obj {
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":       "patchd",
			"version":     version.Version,
			"description": "Deliver code patches to a developer's workspace. A 2xx answer to POST /webhook means the patch is on disk and will be applied. Patches apply in order, inside the workspace only. patchd itself never runs anything a patch contains; but where the operator has configured checks (commands such as a build or the tests, run after each patch), those checks run the workspace's code as the patch left it, so a patch's code runs: the token is then a permission to run code on this machine.",
		},
		"servers":  []obj{{"url": serverURL}},
		"security": []obj{{"bearerAuth": []string{}}},
		"paths":    openAPIPaths(),
		"components": obj{
			"securitySchemes": obj{"bearerAuth": obj{"type": "http", "scheme": "bearer", "description": "The token printed by 'patchd token'."}},
			"schemas":         merged(openAPISchemas(), fileSchemas()),
		},
	}
}

// states lists the states a patch can be in, in life-cycle order.
func states() []string { return api.States() }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, openAPI(s.serverURL(r)))
}

// serverURL is the servers entry of the OpenAPI document: --public-url,
// else under --trust-proxy the origin the proxy says the client used (if
// the Host guard answers its host), else the address we listen on (never
// the request's Host, which the client chose). On an unspecified address
// (0.0.0.0, ::) that is 127.0.0.1, which reaches us from this machine.
func (s *Server) serverURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return s.opts.PublicURL
	}
	if o := s.forwardedOrigin(r); o != "" {
		return o
	}
	host, port, err := net.SplitHostPort(s.opts.Address)
	if err != nil {
		return "http://127.0.0.1:" + strconv.Itoa(s.opts.Info.Port)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// openAPISchemas are the document's schemas, one entry each.
func openAPISchemas() obj {
	return obj{
		"PatchBlock": obj{
			"type":        "object",
			"required":    []string{"id", "role"},
			"description": "One patch: an id, a role, and either `patch` (one edit) or `edits` (several, across files). target_file is required by the regex and search/replace forms. Every file the patch touches is computed in memory first and written only if every edit succeeds.",
			"properties": obj{
				"id":          obj{"type": "string", "pattern": "^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$", "description": "Unique patch id; sending it again is idempotent."},
				"role":        obj{"type": "string", "maxLength": 128, "description": "What kind of patch this is, e.g. ui_patch."},
				"target_file": obj{"type": "string", "description": "Path relative to the workspace root, for the regex and search/replace forms. Absolute paths, '..', symlinks leading out and .git/ are refused."},
				"description": obj{"type": "string"},
				"patch":       ref("Edit"),
				"edits": obj{"type": "array", "description": "Several edits applied in order, all or nothing; each regex or search/replace edit carries its own target_file.",
					"items": obj{"allOf": []obj{ref("Edit"), {"type": "object", "properties": obj{"target_file": strSchema()}}}}},
				"expand":   obj{"type": "boolean", "description": "Same as patch.expand."},
				"tag":      obj{"type": "string", "description": "With --git: tag the patch's commit. A plain tag name (1-128 of A-Z a-z 0-9 . _ / ( ) -, starting with a letter or digit, valid as refs/tags/<tag>, not starting with refs/, not HEAD).", "maxLength": 128},
				"metadata": obj{"type": "object", "additionalProperties": true, "description": "metadata.author becomes the commit author with --git."},
				"workspace": obj{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
					"description": "Behind patchd gateway: the workspace the patch is for (or post under /ws/<name>/, where it may be left out). A single daemon ignores it."},
				"wait_seconds": obj{"type": "number", "exclusiveMinimum": 0, "maximum": api.MaxWait.Seconds(),
					"description": "Wait up to this many seconds for the outcome, as the wait query parameter does (which wins)."},
			},
		},
		"Edit": obj{
			"description": "One edit; its form is chosen by its fields.",
			"oneOf": []obj{
				{"title": "regex", "type": "object", "required": []string{"pattern", "replacement"}, "properties": obj{
					"pattern":     obj{"type": "string", "description": "Go RE2 regular expression; every match is replaced. Zero matches fails the patch."},
					"replacement": obj{"type": "string", "description": "Literal text, unless expand is true ($1, ${name})."},
					"expand":      obj{"type": "boolean", "default": false},
				}},
				{"title": "search/replace", "type": "object", "required": []string{"search", "replace"}, "properties": obj{
					"search":  obj{"type": "string", "description": "Exact text that must occur exactly once (unless all). If it does not match exactly, trailing whitespace and then a uniform indentation offset are tolerated, and the replacement is re-indented. An empty search creates the file."},
					"replace": strSchema(),
					"all":     obj{"type": "boolean", "default": false, "description": "Replace every occurrence."},
				}},
				{"title": "unified diff", "type": "object", "required": []string{"diff"}, "properties": obj{
					"diff": obj{"type": "string", "description": "A git-style or plain unified diff of one or many files, with creations, deletions and renames. Context must match (with the same whitespace tolerance); line numbers are hints."},
				}},
				{"title": "apply_patch", "type": "object", "required": []string{"apply_patch"}, "properties": obj{
					"apply_patch": obj{"type": "string", "description": "'*** Begin Patch' … '*** End Patch' with Add File, Update File (optionally Move to), Delete File, '@@' context anchors and '*** End of File'."},
				}},
				{"title": "aider SEARCH/REPLACE", "type": "object", "required": []string{"text"}, "properties": obj{
					"text": obj{"type": "string", "description": "One or more aider edit blocks: the file's path on the line before '<<<<<<< SEARCH', the lines to find, '=======', the new lines, '>>>>>>> REPLACE' (5 to 9 marker characters; fences and commentary around them are ignored). A block without a path reuses the previous block's (the first, target_file). Each block is a search/replace edit and counts one against max-edits; an empty SEARCH creates the file (or fills an empty one) and is refused on a file with content. A malformed block is refused (400) naming patch.text and its line."},
				}},
			},
		},
		"Answer": obj{
			"type": "object",
			"properties": obj{
				"status": obj{"type": "string", "enum": []string{"accepted", "error", "reverted", "dropped", "applied", "failed"}},
				"result": obj{"type": "object", "properties": obj{
					"success":   obj{"type": "boolean"},
					"error":     obj{"type": "string", "description": "Why the request was refused, for a person (or the model): the field, path, limit or the closest lines of a failed match."},
					"code":      obj{"type": "string", "description": "Why, for a program: a stable snake_case code to branch on, such as field_missing, field_invalid, json_malformed, path_outside_workspace, path_git_internals, match_not_found, match_ambiguous, id_conflict, patch_not_found, not_applied, worker_busy, store_unavailable, unauthorized."},
					"field":     obj{"type": "string", "description": "The request field at fault, when one is (target_file, patch.search, edits[2].diff, limit)."},
					"patch_id":  strSchema(),
					"state":     obj{"type": "string", "enum": states()},
					"duplicate": obj{"type": "boolean"},
					"attempt":   obj{"type": "integer", "description": "From the second attempt at an id on (a failed patch sent again with another body)."},
					"diff":      obj{"type": "string", "description": "With wait, once applied: the unified diff."},
					"files":     obj{"type": "array", "items": strSchema(), "description": "With wait, once applied: the paths written, created or deleted."},
					"notes":     obj{"type": "array", "items": strSchema()},
					"note":      obj{"type": "string", "description": "What to do next when the patch is not finished yet."},
				}},
			},
		},
		"Patch": obj{
			"type": "object",
			"properties": obj{
				"id": strSchema(), "seq": obj{"type": "integer"}, "state": obj{"type": "string", "enum": states()},
				"role": strSchema(), "target_file": strSchema(), "description": strSchema(), "error": strSchema(),
				"code":    obj{"type": "string", "description": "Why a failed patch failed, for a program (the codes of result.code)."},
				"matches": obj{"type": "integer"}, "received_at": timeSchema(), "started_at": timeSchema(),
				"finished_at": timeSchema(), "reverted_at": timeSchema(), "duration_ms": obj{"type": "number"},
				"diff":             obj{"type": "string", "description": "Unified diff applied; of a long diff, the part from diff_offset (at most 50,000 characters)."},
				"notes":            obj{"type": "array", "items": strSchema(), "description": "How edits were fitted, what a long answer left out and how to fetch it."},
				"commit":           obj{"type": "string", "description": "With --git: the short hash of the commit that recorded the applied patch."},
				"workspace":        obj{"type": "string", "description": "Behind a NATS gateway (patchd gateway): the workspace the patch is for."},
				"diff_size":        obj{"type": "integer", "description": "Set when diff is a part: the whole diff's length in bytes."},
				"diff_offset":      obj{"type": "integer", "description": "Set when diff is a part: where it starts, in bytes."},
				"diff_next_offset": obj{"type": "integer", "description": "Set when more of the diff follows: pass it as diff_offset."},
				"files":            obj{"type": "array", "items": obj{"type": "object"}},
				"attempt":          obj{"type": "integer"},
				"attempts": obj{"type": "array", "description": "Earlier attempts at this id that failed, oldest first.", "items": obj{"type": "object", "properties": obj{
					"attempt": obj{"type": "integer"}, "hash": strSchema(), "error": strSchema(), "code": strSchema(),
					"received_at": timeSchema(), "finished_at": timeSchema()}}},
			},
		},
		"PatchList": obj{
			"type": "object",
			"properties": obj{
				"patches":     obj{"type": "array", "items": ref("Patch")},
				"next_cursor": strSchema(),
			},
		},
	}
}
