package server

import "github.com/patchd/patchd/internal/api"

// The operations of the OpenAPI document, one function each, so that a new
// operation is a line in openAPIPaths and a function of its own. A custom
// GPT reads each operation's summary and description (OpenAI takes at most
// 300 characters of each, TestOperationText holds that) to decide what to
// call: they say what the call does and what to do with its answer.
// Operations that change nothing carry x-openai-isConsequential: false
// (readOnly), so a GPT may call them without asking its user each time.

// openAPIPaths maps each path to its operations.
func openAPIPaths() obj {
	return obj{
		"/webhook":             obj{"post": submitPatchOp()},
		"/patches":             obj{"get": listPatchesOp()},
		"/patches/preview":     obj{"post": previewPatchOp()},
		"/patches/{id}":        obj{"get": getPatchOp(), "delete": dropPatchOp()},
		"/patches/{id}/revert": obj{"post": revertPatchOp()},
		"/health":              obj{"get": healthOp()},
		"/ready":               obj{"get": readyOp()},
		"/file":                obj{"get": readFileOp()},
		"/files":               obj{"get": listFilesOp()},
		"/events":              obj{"get": eventsOp()},
	}
}

// ref is a reference to one of the document's schemas.
func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// jsonContent is a JSON body of schema.
func jsonContent(schema obj) obj {
	return obj{"content": obj{"application/json": obj{"schema": schema}}}
}

// resp is a response with a JSON body.
func resp(desc string, schema obj) obj {
	r := jsonContent(schema)
	r["description"] = desc
	return r
}

// errResp is a refusal's response: an Answer.
func errResp(desc string) obj { return resp(desc, ref("Answer")) }

// readOnly marks op as changing nothing: a GPT need not ask before calling it.
func readOnly(op obj) obj {
	op["x-openai-isConsequential"] = false
	return op
}

// idParam is the {id} of the patch paths.
func idParam() obj {
	return obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string"}, "description": "The patch's id."}
}

// strSchema and timeSchema are a string's and a time's schema.
func strSchema() obj  { return obj{"type": "string"} }
func timeSchema() obj { return obj{"type": "string", "format": "date-time"} }

func submitPatchOp() obj {
	return obj{
		"operationId": "submitPatch",
		"summary":     "Submit a patch",
		"description": "Change files, one edit or several, all or nothing. Pass wait=30s to get the outcome in this answer. If state is queued or applying, call getPatch with result.patch_id until it is applied or failed. A failed patch's error quotes the closest lines: fix the edit and submit it again, same id.",
		"parameters": []obj{{"name": "wait", "in": "query", "schema": strSchema(),
			"description": "Wait for the outcome, e.g. 30s (at most 40s): the answer is then 200 applied (with diff and files) or failed (success false, error, code). Still not finished: 202 with a note; call getPatch."}},
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": ref("PatchBlock")}}},
		"responses": obj{
			"202": resp("Accepted and durably stored, not yet applied (state queued or applying): call getPatch until it is applied or failed.", ref("Answer")),
			"200": resp("With wait: the outcome, status applied or failed (success false, result.error and code say why). Also the same id and body sent before: its state, duplicate true.", ref("Answer")),
			"400": errResp("Malformed JSON, a missing or invalid field, or a path outside the workspace. result.error names the field."),
			"401": errResp("Missing or invalid bearer token or signature."),
			"403": errResp("The Host or Origin header names another site (DNS rebinding, a web page); see --allowed-host and --allowed-origin."),
			"409": errResp("The id was already used for a different patch that did not fail (a failed one takes a new body)."),
			"410": errResp(expiredText),
			"413": errResp("Body over the size limit."),
			"415": errResp("Content-Type is missing or not application/json."),
			"429": errResp("Too many requests; retry after the Retry-After header."),
			"503": errResp("The store cannot write (disk full, read-only); nothing was accepted."),
		},
	}
}

func listPatchesOp() obj {
	return readOnly(obj{
		"operationId": "listPatches",
		"summary":     "List patches, newest first",
		"description": "A page of patches (id, state, error; no diffs), newest first. A page ends early when it would pass 80,000 characters. Pass next_cursor as cursor for the next page. Call getPatch for one patch's diff.",
		"parameters": []obj{
			{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": api.MaxListLimit, "default": api.DefaultListLimit}},
			{"name": "cursor", "in": "query", "schema": strSchema(), "description": "next_cursor of the previous page"},
			{"name": "state", "in": "query", "schema": obj{"type": "string", "enum": states()}},
		},
		"responses": obj{"200": resp("A page of patches.", ref("PatchList")), "401": errResp("Unauthorized.")},
	})
}

func previewPatchOp() obj {
	return readOnly(obj{
		"operationId": "previewPatch",
		"summary":     "Preview a patch",
		"description": "The diff a patch would produce, or why it would fail (422, quoting the closest lines of the file), without storing or writing anything. Takes the same body as submitPatch.",
		"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": ref("PatchBlock")}}},
		"responses": obj{
			"200": resp("What the patch would change.", obj{"type": "object", "properties": obj{
				"status": strSchema(), "result": obj{"type": "object", "properties": obj{
					"success": obj{"type": "boolean"}, "patch_id": strSchema(),
					"files": obj{"type": "array", "items": strSchema()}, "diff": strSchema(),
					"notes": obj{"type": "array", "items": strSchema(), "description": "What a long preview left out: the diff is cut at 50,000 characters."},
				}},
			}}),
			"400": errResp("Malformed JSON, a missing or invalid field, or a path outside the workspace."),
			"422": errResp("The patch would fail; result.error says why (for a failed match: the closest lines in the file)."),
			"401": errResp("Unauthorized."),
		},
	})
}

// expiredText is the 410 of an id retention removed.
const expiredText = "Retention (--retain) removed this patch (code expired); result.error says when. Its id is not taken again."

func getPatchOp() obj {
	return readOnly(obj{
		"operationId": "getPatch",
		"summary":     "Get a patch",
		"description": "A patch's state (queued, applying, applied, failed, reverted), its error and code if it failed, and the diff applied. Call again while it is queued or applying. A long diff comes in parts: when diff_next_offset is set, call again with diff_offset set to it.",
		"parameters": []obj{idParam(), {"name": "diff_offset", "in": "query", "required": false,
			"description": "Where the part of a long diff starts, in bytes: the diff_next_offset of the previous answer. Default 0.",
			"schema":      obj{"type": "integer", "minimum": 0, "default": 0}}},
		"responses": obj{"200": resp("The patch.", ref("Patch")), "404": errResp("No such patch."), "410": errResp(expiredText), "401": errResp("Unauthorized.")},
	})
}

func dropPatchOp() obj {
	return obj{
		"operationId": "dropPatch",
		"summary":     "Drop a queued patch",
		"description": "A patch still queued fails without being applied. One the worker has started or finished is refused with 409 naming its state; undo an applied one with revertPatch.",
		"parameters":  []obj{idParam()},
		"responses": obj{
			"200": resp("Dropped (state failed).", ref("Answer")),
			"404": errResp("No such patch."),
			"409": errResp("Not queued: the worker has started on it, or it is finished."),
			"410": errResp(expiredText),
			"401": errResp("Unauthorized."),
		},
	}
}

func revertPatchOp() obj {
	return obj{
		"operationId": "revertPatch",
		"summary":     "Revert an applied patch",
		"description": "Undo an applied patch, restoring its files byte for byte. Refused with 409 if it is not applied or a file changed since.",
		"parameters": []obj{idParam(), {"name": "wait", "in": "query", "required": false,
			"description": "How long to wait for the worker if it is busy applying a patch, as a duration (5s); default and at most 20s.",
			"schema":      obj{"type": "string"}}},
		"responses": obj{
			"200": resp("Reverted.", ref("Answer")),
			"400": errResp("A wait that is not a duration from above 0 to 20s."),
			"404": errResp("No such patch."),
			"409": errResp("Not applied, or the file changed since it was applied."),
			"410": errResp(expiredText),
			"503": errResp("The worker stayed busy applying a patch for the whole wait, or the store cannot write; nothing was reverted; retry after the Retry-After header."),
			"401": errResp("Unauthorized."),
		},
	}
}

func healthOp() obj {
	return readOnly(obj{
		"operationId": "health", "summary": "Liveness and uptime; with the token also pid, port, version, machine metrics and the queue", "security": []obj{},
		"responses": obj{"200": resp("Healthy.", obj{"type": "object"}), "503": resp("Starting or stopping.", obj{"type": "object"})},
	})
}

func readyOp() obj {
	return readOnly(obj{
		"operationId": "ready", "summary": "200 once the store is open and the worker runs", "security": []obj{},
		"responses": obj{"200": obj{"description": "Ready."}, "503": obj{"description": "Not ready."}},
	})
}

func eventsOp() obj {
	return readOnly(obj{
		"operationId": "streamEvents",
		"summary":     "Follow patch events live (Server-Sent Events)",
		"description": "A text/event-stream of every patch state change: id is event_id, event its name (patch.applied), data the event JSON. Resume with the Last-Event-ID header or after. event: reset says the events asked for are gone: read the patches again.",
		"parameters": []obj{
			{"name": "after", "in": "query", "schema": obj{"type": "integer", "minimum": 0},
				"description": "Start after this event_id (0: all the events kept); the Last-Event-ID header wins. Default: only events from now on."},
			{"name": "Last-Event-ID", "in": "header", "schema": obj{"type": "integer", "minimum": 0},
				"description": "The id of the last event received: the stream resumes right after it."},
		},
		"responses": obj{
			"200": obj{"description": "The stream, until the client leaves or patchd stops or restarts (reconnect with Last-Event-ID).",
				"content": obj{"text/event-stream": obj{"schema": obj{"type": "string"}}}},
			"400": errResp("after or Last-Event-ID is not a number."),
			"401": errResp("Unauthorized."),
		},
	})
}
