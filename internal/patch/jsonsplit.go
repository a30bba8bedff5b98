package patch

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// splitObject splits a JSON object into its members the way json.Unmarshal
// into a map[string]json.RawMessage does, without its reflection: each
// value is the exact bytes of the member's value (aliasing data, capacity
// cut so that appending cannot write into data), a repeated key keeps its
// last value, and keys are unquoted as Unmarshal unquotes them.
//
// data must be valid JSON (json.Valid) whose value is an object, with
// nothing but white space around it; the scanner relies on that and does
// not validate. ok is false if the bytes do not have the shape it expects,
// and the caller then falls back to Unmarshal.
func splitObject(data []byte) (fields map[string]json.RawMessage, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	fields = make(map[string]json.RawMessage, 8)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return fields, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		keyEnd := skipString(data, i)
		if keyEnd < 0 {
			return nil, false
		}
		key, ok := unquoteKey(data[i:keyEnd])
		if !ok {
			return nil, false
		}
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		end := skipValue(data, i)
		if end < 0 {
			return nil, false
		}
		fields[key] = json.RawMessage(data[i:end:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return fields, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// unquoteKey unquotes a member name: without escapes and valid UTF-8 it is
// the bytes between the quotes; otherwise Unmarshal decides (escapes,
// invalid UTF-8 replaced by U+FFFD).
func unquoteKey(quoted []byte) (string, bool) {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", false
	}
	return s, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just after the string starting at i (a
// '"'), or -1 if it does not end.
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the escaped byte; \uXXXX's hex digits need no care
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just after the value starting at i, or -1.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end := skipString(data, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(data) {
		switch data[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}
