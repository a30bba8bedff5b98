// Package jsonscan walks JSON objects and arrays without decoding them, for
// the hot paths where encoding/json's reflection costs more than the work
// around it (the webhook's body, the journal's records). It checks the
// structure it walks (quotes, colons, commas, brackets), not the insides of
// the values it hands out; callers decode those strictly, or validate the
// whole input first (json.Valid), and fall back to encoding/json for
// anything unexpected, so that its answer is always the one that counts.
package jsonscan

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Object calls fn with each member of the object that is the whole of data
// (white space around it allowed), in order: key is the raw text between
// the key's quotes, escapes untouched; value the member's raw value. It
// stops at fn's false and reports whether the walk reached the end.
func Object(data []byte, fn func(key, value []byte) bool) bool {
	return ObjectIndex(data, func(key []byte, start, end int) bool {
		return fn(key, data[start:end:end])
	})
}

// ObjectIndex is Object giving where each value is: data[start:end].
func ObjectIndex(data []byte, fn func(key []byte, start, end int) bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		end := endOfString(data, i)
		if end < 0 {
			return false
		}
		key := data[i+1 : end-1]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		vend := endOfValue(data, i)
		if vend < 0 || !fn(key, i, vend) {
			return false
		}
		i = skipSpace(data, vend)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// Array returns the raw elements of the array that is the whole of data.
func Array(data []byte) ([][]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	out := [][]byte{}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return out, skipSpace(data, i+1) == len(data)
	}
	for {
		end := endOfValue(data, i)
		if end < 0 {
			return nil, false
		}
		out = append(out, data[i:end:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return out, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// IsNull reports whether a raw value is null.
func IsNull(v []byte) bool { return string(v) == "null" }

// String unescapes a raw JSON string value. It refuses what is not a valid
// JSON string, and also what encoding/json would repair rather than refuse
// (invalid UTF-8, a lone surrogate), so that a caller falling back to
// encoding/json gets its repair.
func String(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple {
		if !utf8.Valid(inner) {
			return "", false
		}
		return string(inner), true
	}
	out := make([]byte, 0, len(inner))
	for i := 0; i < len(inner); {
		c := inner[i]
		switch {
		case c == '"' || c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(inner) {
			return "", false
		}
		switch inner[i+1] {
		case '"', '\\', '/':
			out = append(out, inner[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(inner, i+2)
			if !ok {
				return "", false
			}
			if !utf16.IsSurrogate(r) {
				out = utf8.AppendRune(out, r)
				i += 6
				continue
			}
			// Only a well-formed pair; encoding/json decides the rest.
			if i+12 > len(inner) || inner[i+6] != '\\' || inner[i+7] != 'u' {
				return "", false
			}
			r2, ok := hex4(inner, i+8)
			if !ok {
				return "", false
			}
			pair := utf16.DecodeRune(r, r2)
			if pair == utf8.RuneError {
				return "", false
			}
			out = utf8.AppendRune(out, pair)
			i += 12
			continue
		default:
			return "", false
		}
		i += 2
	}
	if !utf8.Valid(out) {
		return "", false
	}
	return string(out), true
}

// hex4 reads four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// endOfString returns the index after the string starting at data[i], or -1.
func endOfString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// endOfValue returns the index after the value starting at data[i], or -1.
// Nested values are matched by their brackets, not checked.
func endOfValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return endOfString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end := endOfString(data, j)
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
	j := i
	for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' &&
		data[j] != ' ' && data[j] != '\t' && data[j] != '\r' && data[j] != '\n' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
