package patch

import (
	"strings"
	"testing"
	"time"
)

func TestLocateLevels(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    string // lines looked for
		pos     int    // -1: not found
		lv      level
		reindnt string // how "    x" is re-indented there
	}{
		{name: "exact", file: "a\n  b\nc\n", want: "  b", pos: 1, lv: levelExact, reindnt: "    x"},
		{name: "crlf file, lf text", file: "a\r\n  b\r\nc\r\n", want: "a\n  b", pos: 0, lv: levelExact, reindnt: "    x"},
		{name: "trailing whitespace in file", file: "a \n  b\t\nc\n", want: "a\n  b", pos: 0, lv: levelTrailing, reindnt: "    x"},
		{name: "trailing whitespace in text", file: "a\n  b\nc\n", want: "a  \n  b ", pos: 0, lv: levelTrailing, reindnt: "    x"},
		{name: "typographic punctuation in file", file: "Don\u2019t \u201cpanic\u201d \u2014 ever\n", want: "Don't \"panic\" - ever", pos: 0, lv: levelPunct, reindnt: "    x"},
		{name: "typographic punctuation in text", file: "a\u00a0b -- 'c'\n", want: "a b \u2013- \u2018c\u2019", pos: 0, lv: levelPunct, reindnt: "    x"},
		{name: "file indented deeper", file: "def f():\n    if x:\n        y()\n", want: "if x:\n    y()", pos: 1, lv: levelIndent, reindnt: "        x"},
		{name: "file indented less", file: "if x:\n    y()\n", want: "    if x:\n        y()", pos: 0, lv: levelIndent, reindnt: "x"},
		{name: "blank lines match blank lines", file: "  a\n\n  b\n", want: "a\n   \nb", pos: 0, lv: levelIndent, reindnt: "      x"},
		{name: "tabs in file, spaces in text", file: "func f() {\n\tif x {\n\t\ty()\n\t}\n}\n", want: "    if x {\n        y()\n    }", pos: 1, lv: levelWidth, reindnt: "\tx"},
		{name: "tabs in file, deeper spaces in text", file: "\tif x {\n\t\ty()\n\t}\n", want: "        if x {\n            y()\n        }", pos: 0, lv: levelWidth, reindnt: "x"},
		{name: "2-space text for tabs", file: "\tif x {\n\t\ty()\n\t}\n", want: "  if x {\n    y()\n  }", pos: 0, lv: levelWidth, reindnt: "\t\tx"},
		{name: "spaces in file, tabs in text", file: "    if x:\n        y()\n", want: "\tif x:\n\t\ty()", pos: 0, lv: levelWidth, reindnt: "    x"},
		{name: "inconsistent indentation", file: "if x:\n    y()\n", want: "if x:\ny()", pos: -1},
		{name: "different text", file: "if x:\n    y()\n", want: "if x:\n    z()", pos: -1},
		{name: "blank against text", file: "a\n\nb\n", want: "a\nx\nb", pos: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDoc([]byte(tt.file))
			m, me := locate(d, splitText(tt.want), where{expected: -1})
			if tt.pos < 0 {
				if me == nil || me.Count != 0 {
					t.Fatalf("locate(%q in %q) = %+v, %v, want not found", tt.want, tt.file, m, me)
				}
				return
			}
			if me != nil {
				t.Fatalf("locate(%q in %q) error:\n%v", tt.want, tt.file, me)
			}
			if m.pos != tt.pos || m.lv != tt.lv {
				t.Errorf("locate(%q in %q) = pos %d level %d, want pos %d level %d", tt.want, tt.file, m.pos, m.lv, tt.pos, tt.lv)
			}
			if got := m.reindent("    x"); got != tt.reindnt {
				t.Errorf("locate(%q in %q) re-indents %q as %q, want %q", tt.want, tt.file, "    x", got, tt.reindnt)
			}
			if got := m.reindent(""); got != "" {
				t.Errorf("re-indenting a blank line gives %q, want it blank", got)
			}
		})
	}
}

func TestLocatePlaces(t *testing.T) {
	// "x" then "y" at lines 3, 29 and 55.
	var b strings.Builder
	for i := 0; i < 75; i++ {
		if i%25 == 2 {
			b.WriteString("x\ny\n")
		} else {
			b.WriteString("line\n")
		}
	}
	d := newDoc([]byte(b.String()))
	want := []string{"x", "y"}
	tests := []struct {
		name   string
		wh     where
		pos    int   // -1 for an error
		places []int // of the ambiguity error
	}{
		{name: "no hint", wh: where{expected: -1}, pos: -1, places: []int{3, 29, 55}},
		{name: "exact hint wins", wh: where{expected: 28}, pos: 28},
		{name: "near hint wins", wh: where{expected: 35}, pos: 28},
		{name: "hint between two", wh: where{expected: 41}, pos: -1, places: []int{3, 29, 55}},
		{name: "far hint, nearest still wins", wh: where{expected: 200}, pos: 54},
		{name: "equally near", wh: where{expected: 15}, pos: -1, places: []int{3, 29, 55}},
		{name: "hunk order first", wh: where{from: 4, expected: 2}, pos: 28},
		{name: "first after an anchor", wh: where{from: 5, expected: -1, first: true}, pos: 28},
		{name: "after the cursor, unique", wh: where{from: 40, expected: -1}, pos: 54},
		{name: "after the cursor, ambiguous", wh: where{from: 4, expected: -1}, pos: -1, places: []int{29, 55}},
		{name: "at the end", wh: where{atEnd: true}, pos: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, me := locate(d, want, tt.wh)
			switch {
			case tt.pos >= 0 && me != nil:
				t.Fatalf("locate(%+v) error:\n%v", tt.wh, me)
			case tt.pos >= 0 && m.pos != tt.pos:
				t.Errorf("locate(%+v) = %d, want %d", tt.wh, m.pos, tt.pos)
			case tt.pos < 0 && me == nil:
				t.Errorf("locate(%+v) = %d, want an error", tt.wh, m.pos)
			case tt.pos < 0 && !equalInts(me.Places, tt.places):
				t.Errorf("locate(%+v) places = %v, want %v", tt.wh, me.Places, tt.places)
			}
		})
	}
	if m, me := locate(d, []string{"line", "line"}, where{atEnd: true}); me != nil || m.pos != len(d.lines)-2 {
		t.Errorf("locate at the end = %d, %v, want %d", m.pos, me, len(d.lines)-2)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFindBounded checks that a file built to defeat the candidate hashing
// (every line's trimmed text equal, indentation never consistent) costs
// bounded time.
func TestFindBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 100000; i++ {
		b.WriteString(strings.Repeat(" ", i%7) + "x\n")
	}
	d := newDoc([]byte(b.String()))
	want := make([]string, 2000)
	for i := range want {
		want[i] = strings.Repeat(" ", (i*3)%5) + "x"
	}
	start := time.Now()
	for lv := levelExact; lv < numLevels; lv++ {
		find(d, want, 0, len(d.lines), lv, maxPlaces, false)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("find on a pathological file took %v", el)
	}
}

func TestMatchDescribe(t *testing.T) {
	tests := []struct {
		m    match
		want string
	}{
		{match{lv: levelExact}, ""},
		{match{lv: levelTrailing}, "ignoring trailing whitespace"},
		{match{lv: levelPunct}, "reading typographic quotes, dashes and non-breaking spaces as ASCII"},
		{match{lv: levelIndent, add: "    "}, "with 4 spaces more indentation in the file (re-indented)"},
		{match{lv: levelIndent, remove: "\t"}, "with 1 tab less indentation in the file (re-indented)"},
		{match{lv: levelIndent, add: "\t\t  "}, "with 2 tabs and 2 spaces more indentation in the file (re-indented)"},
		{match{lv: levelWidth, tabW: 4, tabs: true}, "comparing indentation by width (a tab as 4 columns; re-indented with tabs)"},
	}
	for _, tt := range tests {
		if got := tt.m.describe(); got != tt.want {
			t.Errorf("%+v.describe() = %q, want %q", tt.m, got, tt.want)
		}
	}
}
