package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestJSONLen: JSONLen is the length encoding/json gives a string (HTML
// not escaped, as the doors encode), for every kind of character.
func TestJSONLen(t *testing.T) {
	for _, s := range []string{"", "abc", "a\"b\\c\n\r\t", "\x00\x01\x1f\x7f", "<>&", "é€😀", "\u2028\u2029", "\xff\xfe", "a\xe2\x82"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if want := buf.Len() - 3; JSONLen(s) != want {
			t.Errorf("JSONLen(%q) = %d, encoding/json makes %d", s, JSONLen(s), want)
		}
	}
}

// TestCutJSON: a cut fits its bound, never splits a rune, ends at a line
// end when one is in its second half, and leaves what fits alone.
func TestCutJSON(t *testing.T) {
	s := strings.Repeat("line é\x01\"\n", 1000)
	for _, max := range []int{0, 1, 7, 100, 1001, 5000} {
		c := CutJSON(s, max)
		if JSONLen(c) > max || !strings.HasPrefix(s, c) || !utf8.ValidString(c) {
			t.Fatalf("CutJSON(_, %d) = %d characters, valid %v", max, JSONLen(c), utf8.ValidString(c))
		}
		if max >= 100 && !strings.HasSuffix(c, "\n") {
			t.Errorf("CutJSON(_, %d) does not end at a line end", max)
		}
	}
	if CutJSON("short", 10) != "short" {
		t.Error("a string that fits was cut")
	}
}
