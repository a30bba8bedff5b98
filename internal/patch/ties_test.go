package patch

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestHunkTies checks the rule for a hunk whose text matches in several
// places (finding 15): the places before the previous hunk of the file are
// out, then the one nearest to where the hunk's line numbers put it wins;
// the choice is noted, and a tie that neither rule breaks is refused.
func TestHunkTies(t *testing.T) {
	// The same two lines at lines 2, 6 and 10.
	file := "def a():\n    x = 1\n    return x\n\ndef b():\n    x = 1\n    return x\n\ndef c():\n    x = 1\n    return x\n"
	body := "     x = 1\n-    return x\n+    return x + 1\n"
	at := func(line int) string {
		lines := strings.SplitAfter(file, "\n")
		lines[line] = "    return x + 1\n"
		return strings.Join(lines, "")
	}
	diff := func(hunks ...string) map[string]any {
		return map[string]any{"diff": "--- a/f\n+++ b/f\n" + strings.Join(hunks, "")}
	}
	tests := []struct {
		name  string
		patch map[string]any
		want  string // the file after, or the error
		note  string // a note the change must have
	}{
		{name: "exact numbers, duplicates elsewhere", patch: diff("@@ -6,2 +6,2 @@\n" + body), want: at(6),
			note: "diff hunk 1 (@@ -6,2 +6,2 @@) matched 3 places (lines 2, 6, 10); applied at line 6, nearest to line 6, where its line numbers put it"},
		{name: "shifted numbers near one", patch: diff("@@ -7,2 +7,2 @@\n" + body), want: at(6),
			note: "diff hunk 1 (@@ -7,2 +7,2 @@) matched 3 places (lines 2, 6, 10); applied at line 6, nearest to line 7, where its line numbers put it"},
		{name: "far numbers, still nearest", patch: diff("@@ -40,2 +40,2 @@\n" + body), want: at(10),
			note: "applied at line 10, nearest to line 40"},
		{name: "no numbers, hunk order decides",
			patch: diff("@@ @@\n def b():\n     x = 1\n-    return x\n+    return x * 2\n", "@@ @@\n"+body),
			want:  strings.Replace(at(10), "def b():\n    x = 1\n    return x\n", "def b():\n    x = 1\n    return x * 2\n", 1),
			note:  "diff hunk 2 (@@ @@) matched 2 places (lines 2, 10); applied at line 10, the only one after hunk 1"},
		{name: "hunk order before numbers",
			patch: diff("@@ -5,3 +5,3 @@\n def b():\n     x = 1\n-    return x\n+    return x * 2\n", "@@ -2,2 +2,2 @@\n"+body),
			want:  strings.Replace(at(10), "def b():\n    x = 1\n    return x\n", "def b():\n    x = 1\n    return x * 2\n", 1),
			note:  "diff hunk 2 (@@ -2,2 +2,2 @@) matched 2 places (lines 2, 10); applied at line 10, the only one after hunk 1"},
		{name: "equally near", patch: diff("@@ -4,2 +4,2 @@\n" + body),
			want: "diff hunk 1 (@@ -4,2 +4,2 @@) matches 3 places in f (lines 2, 6, 10); lines 2 and 6 are equally near line 4, where its line numbers put it; add context lines to make it unique"},
		{name: "no numbers, no earlier hunk", patch: diff("@@ @@\n" + body),
			want: "diff hunk 1 (@@ @@) matches 3 places in f (lines 2, 6, 10); add context lines to make it unique"},
		{name: "apply_patch numbers", patch: map[string]any{"apply_patch": "*** Begin Patch\n*** Update File: f\n@@ -7,2 +7,2 @@\n" + body + "*** End Patch\n"}, want: at(6),
			note: "apply_patch hunk 1 (@@ -7,2 +7,2 @@) matched 3 places (lines 2, 6, 10); applied at line 6, nearest to line 7, where its line numbers put it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := planPatch(t, tt.patch, []byte(file))
			if err != nil {
				if err.Error() != tt.want {
					t.Fatalf("Plan(%q) error =\n%v\nwant\n%s", tt.patch, err, tt.want)
				}
				return
			}
			if len(changes) != 1 || string(changes[0].New) != tt.want {
				t.Fatalf("Plan(%q) = %+v, want %q", tt.patch, changes, tt.want)
			}
			if notes := strings.Join(changes[0].Notes, "\n"); !strings.Contains(notes, tt.note) {
				t.Errorf("Plan(%q) notes =\n%s\nwant one with %q", tt.patch, notes, tt.note)
			}
		})
	}
}

// TestUniqueNeverLies checks doc.unique against a count of the lines, as
// splices change the file: it may miss a unique text, never call a
// repeated one unique.
func TestUniqueNeverLies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string { return "w" + strconv.Itoa(r.IntN(250)) }
	var b strings.Builder
	for range 200 {
		b.WriteString(word() + "\n")
	}
	d := newDoc([]byte(b.String()))
	sawUnique := 0
	for step := range 2000 {
		// want matches somewhere, as unique requires: two lines of d.
		at := r.IntN(len(d.lines) - 1)
		want := d.texts(at, at+2)
		got := d.unique(want)
		n := func(s string) int {
			k := 0
			for _, l := range d.lines {
				if l.text == s {
					k++
				}
			}
			return k
		}
		if got {
			sawUnique++
		}
		if got && n(want[0]) != 1 && n(want[1]) != 1 {
			t.Fatalf("step %d: unique(%q) = true, but they occur %d and %d times", step, want, n(want[0]), n(want[1]))
		}
		lo := r.IntN(len(d.lines) + 1)
		hi := min(lo+r.IntN(3), len(d.lines))
		if len(d.lines)-(hi-lo) < 2 {
			continue
		}
		var repl []line
		for range r.IntN(3) {
			repl = append(repl, line{text: word(), eol: "\n"})
		}
		d.splice(lo, hi, repl)
	}
	if sawUnique == 0 {
		t.Errorf("unique never said true: the test proves nothing")
	}
}
