package patch

import (
	"strings"
	"testing"
)

func TestMatchErrorMessages(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	many := make([]string, 15)
	for i := range many {
		many[i] = "line " + string(rune('a'+i))
	}
	tests := []struct {
		name string
		e    MatchError
		want string
	}{
		{
			name: "ambiguous",
			e:    MatchError{File: "src/app.py", What: "search text", Count: 3, Places: []int{4, 19, 40}, Hint: `add surrounding lines to make it unique, or set "all": true`},
			want: `search text matches 3 places in src/app.py (lines 4, 19, 40); add surrounding lines to make it unique, or set "all": true`,
		},
		{
			name: "ambiguous, many places",
			e:    MatchError{File: "f", What: "diff hunk 1 (@@ -1 +1 @@)", Count: 100, Places: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
			want: `diff hunk 1 (@@ -1 +1 @@) matches at least 100 places in f (lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …)`,
		},
		{
			name: "not found, closest",
			e: MatchError{File: "src/app.py", What: "search text", Lines: []string{"def greet(name):", `    return "hello " + name`},
				Closest: &Closest{Start: 12, Lines: []string{"def greet(name: str):", `    return "hello " + name`}, Percent: 87}},
			want: "search text not found in src/app.py:\n" +
				"  def greet(name):\n" +
				"      return \"hello \" + name\n" +
				"closest match (lines 12-13, 87% similar):\n" +
				"  12| def greet(name: str):\n" +
				"  13|     return \"hello \" + name",
		},
		{
			name: "line numbers aligned, long lines cut, long texts cut",
			e:    MatchError{File: "f", What: "search text", Lines: append([]string{long}, many...), Closest: &Closest{Start: 8, Lines: many[:4], Percent: 40}},
			want: "search text not found in f:\n" +
				"  " + strings.Repeat("é", 80) + "…\n" +
				"  line a\n  line b\n  line c\n  line d\n  line e\n  line f\n  line g\n  line h\n  line i\n  line j\n  line k\n" +
				"  … (4 more lines)\n" +
				"closest match (lines 8-11, 40% similar):\n" +
				"   8| line a\n   9| line b\n  10| line c\n  11| line d",
		},
		{
			name: "at the end, single line, already applied",
			e:    MatchError{File: "f", What: "apply_patch hunk 2", Lines: []string{"x"}, AtEnd: true, Closest: &Closest{Start: 3, Lines: []string{"x"}, Percent: 100}, AppliedAt: 9},
			want: "apply_patch hunk 2 not found at the end of f:\n  x\nclosest match (line 3, 100% similar):\n  3| x\n" +
				"the lines this edit would produce are already in the file at line 9: was it applied before?",
		},
		{
			name: "nothing similar",
			e:    MatchError{File: "f", What: "search text", Lines: []string{"zzz"}, FileLines: 40, Note: `"..." (line 2 above) stands for omitted lines: quote every line in full, nothing may be elided`},
			want: "search text not found in f:\n  zzz\nno similar lines in the file (40 lines)\n" +
				`"..." (line 2 above) stands for omitted lines: quote every line in full, nothing may be elided`,
		},
		{
			name: "empty file, CR and blank lines",
			e:    MatchError{File: "f", What: "search text", Lines: []string{"a\r", "", "b"}},
			want: "search text not found in f:\n  a\n\n  b\nthe file is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	file := "package main\n\nfunc greet(name string) string {\n\treturn \"hello \" + name\n}\n\nfunc main() {\n\tprintln(greet(\"x\"))\n}\n"
	d := newDoc([]byte(file))
	tests := []struct {
		name    string
		want    []string
		start   int // 0: nil
		percent int
	}{
		{name: "renamed parameter", want: []string{"func greet(who string) string {", "\treturn \"hello \" + who"}, start: 3, percent: 85},
		{name: "common indentation ignored, tabs against spaces counted", want: []string{"    func main() {", "        println(greet(\"y\"))"}, start: 7, percent: 86},
		{name: "longer than the file", want: strings.Split(file+file, "\n"), start: 1, percent: 50},
		{name: "unrelated", want: []string{"SELECT * FROM users WHERE id = 1;"}, start: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := closest(d, tt.want)
			switch {
			case tt.start == 0 && c != nil:
				t.Errorf("closest(%q) = %+v, want none", tt.want, c)
			case tt.start == 0:
			case c == nil:
				t.Errorf("closest(%q) = nil, want lines from %d", tt.want, tt.start)
			case c.Start != tt.start || c.Percent != tt.percent:
				t.Errorf("closest(%q) = lines from %d, %d%%, want from %d, %d%%", tt.want, c.Start, c.Percent, tt.start, tt.percent)
			}
		})
	}
}
