package patch

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"pattern":"(x)","replacement":"$1","expand":true}}`))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","expand":true,"patch":{"pattern":"(?P<n>x)","replacement":"${n}$$"}}`))
	f.Add([]byte(`{"id":"..","role":"r","target_file":"f","patch":{"pattern":"x","replacement":""}}`))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"pattern":"(","replacement":""}}`))
	f.Add([]byte(`{"id":5}`))
	f.Add([]byte(`[{"id":"a"}]`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Add([]byte(`{"id":"a"} trailing`))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"search":"x","replace":"y","all":true}}`))
	f.Add([]byte(`{"id":"a","role":"r","patch":{"diff":"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"}}`))
	f.Add([]byte(`{"id":"a","role":"r","patch":"*** Begin Patch\n*** Add File: g\n+x\n*** End Patch"}`))
	f.Add([]byte(`{"id":"a","role":"r","edits":[{"target_file":"f","pattern":"a","replacement":"b"},{"apply_patch":"*** Begin Patch\n*** Delete File: f\n*** End Patch"}]}`))
	f.Add([]byte(`{"id":"a","role":"r","patch":{"text":"f\n` + "```" + `python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n` + "```" + `\n<<<<<<< SEARCH\n=======\nc\n>>>>>>> REPLACE\n"}}`))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":"<<<<< SEARCH\r\nx\r\n=========\r\n>>>>>>>>> REPLACE"}`))
	f.Add([]byte(`{"id":"a","role":"r","edits":[{"text":"g\n<<<<<<< SEARCH\na\n"},{"text":"../g\n<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE\n"}]}`))
	// The shapes agents nest edits in (issue 12).
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":{"target_file":"g","edits":[{"search":"a","replace":"b"},"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"]}}`))
	f.Add([]byte(`{"id":"a","role":"r","target_file":"f","patch":[{"old_string":"a","new_string":"b","replace_all":true},{"find":"a","replace":"b"}]}`))
	f.Add([]byte(`{"id":"a","role":"r","edits":[{"search":"a","replace":"b"}],"patch":{"edits":[{"edits":[]}]}}`))
	f.Add([]byte(`{"id":"a","role":"r","file_path":"/etc/passwd","patch":["` + "```" + `python\nf\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n` + "```" + `\n` + "```" + `\n../g\n<<<<<<< SEARCH\n=======\nc\n>>>>>>> REPLACE\n` + "```" + `"]}`))
	f.Add([]byte(`{"id":"a","role":"r","patch":{"edits":[{"path":"f","oldText":"a","newText":"b"}],"search":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parse(body)
		if err != nil {
			var fe *FieldError
			var se *SyntaxError
			if !errors.As(err, &fe) && !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %q, want *FieldError or *SyntaxError", body, err, err)
			}
			if err.Error() == "" {
				t.Fatalf("Parse(%q) error has no message", body)
			}
			return
		}
		if b.ID == "" || b.Role == "" || len(b.Edits) == 0 {
			t.Fatalf("Parse(%q) = %+v, want all required fields", body, b)
		}
		if err := checkID(b.ID); err != nil {
			t.Fatalf("Parse(%q) accepted id %q: %v", body, b.ID, err)
		}
		for _, p := range b.Targets() {
			if p == "" {
				t.Fatalf("Parse(%q) accepted an empty path among %q", body, b.Targets())
			}
		}
		for _, e := range b.Edits {
			re, ok := e.(*RegexEdit)
			if !ok {
				continue
			}
			r := re.Regex
			if re.TargetFile == "" || r.Pattern == "" {
				t.Fatalf("Parse(%q) = %+v, want a target and a pattern", body, re)
			}
			compiled, err := regexp.Compile(r.Pattern)
			if err != nil {
				t.Fatalf("Parse(%q) accepted pattern %q: %v", body, r.Pattern, err)
			}
			if r.Expand {
				if err := checkTemplate(compiled, r.Replacement); err != nil {
					t.Fatalf("Parse(%q) accepted replacement %q: %v", body, r.Replacement, err)
				}
			}
			// A parsed regex edit can always be applied without a compile error.
			if _, _, err := r.Apply(re.TargetFile, body); err != nil {
				var nf *NotFoundError
				if !errors.As(err, &nf) {
					t.Fatalf("Parse(%q) regex Apply error = %v", body, err)
				}
			}
		}
		// Planning against a workspace where every file holds the body
		// never panics.
		_, err = b.Plan(func(string) ([]byte, bool, error) { return body, true, nil })
		checkPlanError(t, "planning "+string(body), err)
	})
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("a\nB\nc\n"))
	f.Add([]byte("a\nb"), []byte("a\nb\n"))
	f.Add([]byte("a\r\nb\r\n"), []byte("a\r\nc\r\n"))
	f.Add([]byte(""), []byte("x"))
	f.Add([]byte("x\n"), []byte(""))
	f.Add(lines(1, 30), replaceLines(lines(1, 30), map[int]string{2: "two", 20: "twenty"}))
	f.Add([]byte("a\nb\na\nb\na\n"), []byte("b\na\nb\n"))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		d := Diff("f", old, new)
		if (d == "") != bytes.Equal(old, new) {
			t.Fatalf("Diff(%q, %q) = %q: empty iff equal broken", old, new, d)
		}
		if d != "" {
			checkDiff(t, old, new, d)
		}

		// Random bytes rarely hold many lines; read each byte as a line
		// from a small alphabet to exercise the line diff itself, and
		// check that its script is a shortest one.
		oldL, newL := lineify(old), lineify(new)
		d = Diff("f", oldL, newL)
		checkDiff(t, oldL, newL, d)
		a, b := splitLines(oldL), splitLines(newL)
		edits := 0
		for i, row := range strings.Split(d, "\n") {
			if i >= 2 && row != "" && (row[0] == '-' || row[0] == '+') {
				edits++
			}
		}
		// The exact search costs about (n+m)^2 steps of myersBudget at
		// worst (D is at most n+m, and it runs to D/2 from both ends at
		// every level of its recursion); past the budget the diff is only
		// correct, not shortest. A product bound let through 6000 lines
		// against 10 (D near 6000), which CI's fuzzing found.
		if n := len(a) + len(b); n*n <= myersBudget/4 {
			if want := len(a) + len(b) - 2*lcsLen(a, b); edits != want {
				t.Fatalf("Diff(%q, %q) makes %d edits, want %d:\n%s", oldL, newL, edits, want, d)
			}
		}
	})
}

// lineify turns each byte of b into a one-letter line, from only five
// letters so that lines repeat.
func lineify(b []byte) []byte {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, 'a'+c%5, '\n')
	}
	return out
}
