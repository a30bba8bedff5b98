package store

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeMetaFast decodes a record's meta as json.Unmarshal into diskPatch
// would, for the JSON that encodeMeta writes, several times faster: replay
// decodes every record of the journal, and Unmarshal's reflection was four
// fifths of opening a store. Anything it does not expect (an unknown or
// repeated member, a value of another type, a string it cannot unescape
// exactly as Unmarshal does, bytes that are not JSON) makes it give up
// (ok false), and the caller uses Unmarshal, which decides.
func decodeMetaFast(meta []byte) (d diskPatch, ok bool) {
	var seen uint32
	ok = scanObject(meta, func(key, v []byte) bool {
		bit, good := metaKeyBit(key)
		if !good || seen&bit != 0 {
			return false // unknown or repeated: Unmarshal decides
		}
		seen |= bit
		if isJSONNull(v) {
			return true // Unmarshal leaves the field as it is
		}
		good = false // a member of diskFile or diskBlob is not one of diskPatch
		switch string(key) {
		case "id":
			d.ID, good = jsonString(v)
		case "h":
			d.Hash, good = jsonString(v)
		case "r":
			d.Role, good = jsonString(v)
		case "t":
			d.Target, good = jsonString(v)
		case "d":
			d.Description, good = jsonString(v)
		case "s":
			var s string
			s, good = jsonString(v)
			d.State = State(s)
		case "e":
			d.Error, good = jsonString(v)
		case "diff":
			d.Diff, good = jsonString(v)
		case "n":
			d.Notes, good = jsonStrings(v)
		case "ra":
			d.ReceivedAt, good = jsonInt(v)
		case "sa":
			d.StartedAt, good = jsonInt(v)
		case "fa":
			d.FinishedAt, good = jsonInt(v)
		case "va":
			d.RevertedAt, good = jsonInt(v)
		case "f":
			d.Files, good = jsonFiles(v)
		case "ib":
			d.Blobs, good = jsonBlobs(v)
		}
		return good
	})
	if !ok {
		return diskPatch{}, false
	}
	return d, true
}

// metaKeys are the members of diskPatch, diskFile and diskBlob; a key's
// bit tells a repeated member.
var metaKeys = []string{"id", "h", "r", "t", "d", "s", "e", "diff", "n", "ra", "sa", "fa", "va", "f", "ib", "p", "oh", "nh", "om", "ex", "del", "l"}

func metaKeyBit(key []byte) (uint32, bool) {
	for i, k := range metaKeys {
		if string(key) == k {
			return 1 << i, true
		}
	}
	return 0, false
}

// scanObject walks an object's members in order, calling fn with each key
// (still quoted inside: a key with an escape is refused, encodeMeta writes
// none) and raw value, and stops at fn's false. It checks the structure it
// walks (quotes, colons, commas, brackets) but not the values' insides,
// which their decoders check.
func scanObject(data []byte, fn func(key, value []byte) bool) bool {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipWS(data, i+1) == len(data)
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
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipWS(data, i+1)
		vend := endOfValue(data, i)
		if vend < 0 || !fn(key, data[i:vend]) {
			return false
		}
		i = skipWS(data, vend)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return skipWS(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// scanArray splits an array into its elements.
func scanArray(data []byte) ([][]byte, bool) {
	if len(data) == 0 || data[0] != '[' {
		return nil, false
	}
	var out [][]byte
	i := skipWS(data, 1)
	if i < len(data) && data[i] == ']' {
		return out, i+1 == len(data)
	}
	for {
		end := endOfValue(data, i)
		if end < 0 {
			return nil, false
		}
		out = append(out, data[i:end])
		i = skipWS(data, end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case ']':
			return out, i+1 == len(data)
		default:
			return nil, false
		}
	}
}

func skipWS(data []byte, i int) int {
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

func isJSONNull(v []byte) bool { return string(v) == "null" }

// jsonString unescapes a JSON string. It gives up on what Unmarshal would
// repair rather than refuse (invalid UTF-8, a lone surrogate), so that
// Unmarshal's repair is the one that counts.
func jsonString(v []byte) (string, bool) {
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
			if utf16.IsSurrogate(r) {
				// Only a well-formed pair; Unmarshal decides the rest.
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
			}
			out = utf8.AppendRune(out, r)
			i += 6
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

// jsonInt reads an integer the way encodeMeta writes one.
func jsonInt(v []byte) (int64, bool) {
	if len(v) == 0 || (len(v) > 1 && v[0] == '0') || (len(v) > 2 && v[0] == '-' && v[1] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

func jsonBool(v []byte) (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func jsonStrings(v []byte) ([]string, bool) {
	elems, ok := scanArray(v)
	if !ok {
		return nil, false
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if isJSONNull(e) {
			continue
		}
		if out[i], ok = jsonString(e); !ok {
			return nil, false
		}
	}
	return out, true
}

func jsonFiles(v []byte) ([]diskFile, bool) {
	elems, ok := scanArray(v)
	if !ok {
		return nil, false
	}
	out := make([]diskFile, len(elems))
	for i, e := range elems {
		if isJSONNull(e) {
			continue
		}
		f := &out[i]
		var seen uint32
		ok := scanObject(e, func(key, v []byte) bool {
			bit, good := metaKeyBit(key)
			if !good || seen&bit != 0 {
				return false
			}
			seen |= bit
			if isJSONNull(v) {
				return true
			}
			good = false
			switch string(key) {
			case "p":
				f.Path, good = jsonString(v)
			case "oh":
				f.OldHash, good = jsonString(v)
			case "nh":
				f.NewHash, good = jsonString(v)
			case "om":
				var n int64
				n, good = jsonInt(v)
				good = good && n >= 0 && n <= 1<<32-1
				f.OldMode = uint32(n)
			case "ex":
				f.Existed, good = jsonBool(v)
			case "del":
				f.Deleted, good = jsonBool(v)
			}
			return good
		})
		if !ok {
			return nil, false
		}
	}
	return out, true
}

func jsonBlobs(v []byte) ([]diskBlob, bool) {
	elems, ok := scanArray(v)
	if !ok {
		return nil, false
	}
	out := make([]diskBlob, len(elems))
	for i, e := range elems {
		if isJSONNull(e) {
			continue
		}
		var seen uint32
		ok := scanObject(e, func(key, v []byte) bool {
			bit, good := metaKeyBit(key)
			if !good || seen&bit != 0 {
				return false
			}
			seen |= bit
			if isJSONNull(v) {
				return true
			}
			good = false
			switch string(key) {
			case "n":
				out[i].Name, good = jsonString(v)
			case "l":
				out[i].Len, good = jsonInt(v)
			}
			return good
		})
		if !ok {
			return nil, false
		}
	}
	return out, true
}
