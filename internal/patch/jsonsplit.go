package patch

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/jsonscan"
)

// splitObject splits a JSON object into its members the way json.Unmarshal
// into a map[string]json.RawMessage does, without its reflection: each
// value is the exact bytes of the member's value (aliasing data, capacity
// cut so that appending cannot write into data), a repeated key keeps its
// last value, and keys are unquoted as Unmarshal unquotes them.
//
// data must be valid JSON (json.Valid) whose value is an object: the scan
// does not check the values' insides. ok is false if the bytes do not have
// the shape it expects, and the caller then falls back to Unmarshal.
func splitObject(data []byte) (fields map[string]json.RawMessage, ok bool) {
	fields = make(map[string]json.RawMessage, 8)
	ok = jsonscan.Object(data, func(key, value []byte) bool {
		k, ok := unquoteKey(key)
		if ok {
			fields[k] = json.RawMessage(value)
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	return fields, true
}

// unquoteKey unquotes a member name given without its quotes: without
// escapes and valid UTF-8 it is those bytes; otherwise Unmarshal decides
// (escapes, invalid UTF-8 replaced by U+FFFD).
func unquoteKey(inner []byte) (string, bool) {
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	quoted := make([]byte, 0, len(inner)+2)
	quoted = append(append(append(quoted, '"'), inner...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}

// flatObject decodes a valid JSON object whose members are all strings,
// numbers, booleans or null (what senders put in "metadata") to the map
// a json.Decoder with UseNumber gives, without its reflection: about a
// fifth of a webhook's parse. ok is false for anything else (a nested
// value, a string encoding/json would repair), which the caller decodes.
func flatObject(raw []byte) (m map[string]any, ok bool) {
	m = make(map[string]any, 8)
	ok = jsonscan.Object(raw, func(key, value []byte) bool {
		k, ok := unquoteKey(key)
		if !ok {
			return false
		}
		switch c := value[0]; {
		case c == '"':
			s, ok := jsonscan.String(value)
			if !ok {
				return false
			}
			m[k] = s
		case string(value) == "true", string(value) == "false":
			m[k] = c == 't'
		case jsonscan.IsNull(value):
			m[k] = nil
		case (c == '-' || c >= '0' && c <= '9') && json.Valid(value):
			m[k] = json.Number(value)
		default:
			return false
		}
		return true
	})
	if !ok {
		return nil, false
	}
	return m, true
}
