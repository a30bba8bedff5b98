package store

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendMeta appends d as JSON, byte for byte what json.Marshal writes
// for it (the fields in their order, omitempty, strings escaped as
// encoding/json escapes them, HTML characters included): every Submit and
// Update encodes one, and json.Marshal's reflection cost more than the
// rest of encoding the record. TestAppendMeta compares the two.
func appendMeta(b []byte, d *diskPatch) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, d.ID)
	b = append(b, `,"h":`...)
	b = appendJSONString(b, d.Hash)
	b = appendStringField(b, `,"r":`, d.Role)
	b = appendStringField(b, `,"t":`, d.Target)
	b = appendStringField(b, `,"d":`, d.Description)
	b = append(b, `,"s":`...)
	b = appendJSONString(b, string(d.State))
	b = appendStringField(b, `,"e":`, d.Error)
	b = appendStringField(b, `,"c":`, d.Code)
	b = appendStringField(b, `,"diff":`, d.Diff)
	if len(d.Files) > 0 {
		b = append(b, `,"f":[`...)
		for i, f := range d.Files {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"p":`...)
			b = appendJSONString(b, f.Path)
			b = appendStringField(b, `,"oh":`, f.OldHash)
			b = appendStringField(b, `,"nh":`, f.NewHash)
			if f.OldMode != 0 {
				b = append(b, `,"om":`...)
				b = strconv.AppendUint(b, uint64(f.OldMode), 10)
			}
			if f.Existed {
				b = append(b, `,"ex":true`...)
			}
			if f.Deleted {
				b = append(b, `,"del":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(d.Blobs) > 0 {
		b = append(b, `,"ib":[`...)
		for i, bl := range d.Blobs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"n":`...)
			b = appendJSONString(b, bl.Name)
			b = append(b, `,"l":`...)
			b = strconv.AppendInt(b, bl.Len, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(d.Notes) > 0 {
		b = append(b, `,"n":[`...)
		for i, n := range d.Notes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, n)
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"gc":`, d.Commit)
	b = appendIntField(b, `,"ra":`, d.ReceivedAt)
	b = appendIntField(b, `,"sa":`, d.StartedAt)
	b = appendIntField(b, `,"fa":`, d.FinishedAt)
	b = appendIntField(b, `,"va":`, d.RevertedAt)
	if len(d.Attempts) > 0 {
		b = append(b, `,"at":[`...)
		for i, a := range d.Attempts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"n":`...)
			b = strconv.AppendInt(b, int64(a.Number), 10)
			b = append(b, `,"h":`...)
			b = appendJSONString(b, a.Hash)
			b = appendStringField(b, `,"e":`, a.Error)
			b = appendStringField(b, `,"c":`, a.Code)
			b = appendIntField(b, `,"ra":`, a.ReceivedAt)
			b = appendIntField(b, `,"fa":`, a.FinishedAt)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendStringField appends key and s, unless s is empty (omitempty).
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendIntField appends key and n, unless n is 0 (omitempty).
func appendIntField(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendJSONString appends s quoted as encoding/json quotes a string with
// HTML escaping on: <, > and & as \u003c, \u003e, \u0026; control
// characters as \b, \f, \n, \r, \t or \u00XX; invalid UTF-8 as \ufffd;
// U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEvent appends e as one line of the event log: what json.Marshal
// writes for it (TestAppendEvent compares them), without its reflection,
// as the committer writes every event of every batch. ok is false for a
// time json.Marshal refuses (a year outside 0-9999: never one of the
// committer's clocks); the caller then asks json.Marshal.
func appendEvent(b []byte, e *Event) (_ []byte, ok bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"event_id":`...)
	b = strconv.AppendUint(b, e.EventID, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event":`...)
	b = appendJSONString(b, e.Event)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(e.State))
	b = appendStringField(b, `,"error":`, e.Error)
	b = appendStringField(b, `,"code":`, e.Code)
	return append(b, '}'), true
}
