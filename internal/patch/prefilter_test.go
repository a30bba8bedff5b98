package patch

import (
	"bytes"
	"github.com/patchd/patchd/internal/benchdata"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestPrefilterLiteral(t *testing.T) {
	tests := []struct {
		pattern string
		lit     string // "" when the prefilter must not apply
	}{
		{`compute\((\d+)0003, "abc"\)`, `0003, "abc")`},
		{`line 12000 `, `line 12000 `},
		{`value_09000 = compute\(90001, "abc"\)`, `value_09000 = compute(90001, "abc")`},
		{`a.b`, `a`},        // . does not match '\n'
		{`ab.*?cde`, `cde`}, // the longest
		{`(?s)a.b`, ``},
		{`a\sb`, ``},
		{`a\Sb`, `a`},
		{`a[^x]b`, ``},
		{`a[[:space:]]b`, ``},
		{`a[ \t]b`, `a`},
		{`a\nb`, ``},
		{`a(?:x|\n)b`, ``},
		{`^abc`, ``},
		{`abc$`, ``},
		{`\Aabc`, ``},
		{`abc\z`, ``},
		{`(?m)^abc`, `abc`},
		{`(?m)abc$`, `abc`},
		{`(?m)^\s*abc`, ``},
		{`\babc\b`, `abc`},
		{`\Babc\B`, `abc`},
		{`a|b`, ``},
		{`abc|abd`, `ab`}, // the parser factors the prefix out
		{`(abc)+`, `abc`},
		{`(abc)*`, ``},
		{`(abc)?`, ``},
		{`(abc){2,}`, `abc`},
		{`(abc){0,3}`, ``},
		{`x{2,}`, `x`},
		{`[a-c]+xyz`, `xyz`},
		{`\d+`, ``},
		{`(?i)abc`, ``},
		{`ab(?i)cd`, `ab`},
		{`héllo`, `héllo`},
		{`\x{e9}t\x{e9}`, "\xc3\xa9t\xc3\xa9"},
		{`\xff`, "\xc3\xbf"}, // the rune U+00FF, as regexp reads it
		{`\x{fffd}`, ``},     // U+FFFD also matches an invalid byte
		{"a\ufffdbc", ``},
		{`\x{d800}`, ``},
		{`(?U)a+b`, `a`}, // the first of the longest,
		{`a(b)c`, `a`},
		{`(a(bc)d)e`, `bc`},
		{`$^`, ``},
		{`x*`, ``},
	}
	for _, tt := range tests {
		lit, ok := prefilterLiteral(tt.pattern)
		if ok != (tt.lit != "") || string(lit) != tt.lit {
			t.Errorf("prefilterLiteral(%q) = %q, %v, want %q, %v", tt.pattern, lit, ok, tt.lit, tt.lit != "")
		}
	}
}

// prefilterAtoms are the pieces randomPattern builds from: literals that
// occur in prefilterAlphabet, characters classes with and without '\n',
// every empty-width assertion, case folding and odd runes.
var prefilterAtoms = []string{
	`a`, `b`, `ab`, `ba`, `abc`, `c`, ` `, `é`, `ÿ`, `\xff`, `\x{fffd}`, `\n`,
	`.`, `(?s:.)`, `\s`, `\S`, `[^a]`, `[ab]`, `[a\n]`, `\d`, `\w`, `\W`,
	`(?i:ab)`, `(?i:é)`, `\b`, `\B`, `(?m:^)`, `(?m:$)`, `^`, `$`, `\A`, `\z`,
}

// prefilterAlphabet makes contents: bytes that form the literals, '\n',
// spaces, valid and invalid UTF-8.
var prefilterAlphabet = []string{
	"a", "b", "c", "a", "b", " ", "\n", "\n", "1", "_", "é", "É", "ÿ",
	"\xff", "\xc3", "\xbf", "\xef\xbf\xbd", "ab", "abc",
}

func randomPattern(r *rand.Rand, depth int) string {
	if depth <= 0 || r.IntN(3) == 0 {
		return prefilterAtoms[r.IntN(len(prefilterAtoms))]
	}
	x := randomPattern(r, depth-1)
	switch r.IntN(10) {
	case 0:
		return "(" + x + ")"
	case 1:
		return "(?:" + x + ")+"
	case 2:
		return "(" + x + ")*"
	case 3:
		return "(?:" + x + ")?"
	case 4:
		return "(" + x + "){2,}"
	case 5:
		return "(?:" + x + "){1,2}?"
	case 6:
		return x + "|" + randomPattern(r, depth-1)
	default:
		var sb strings.Builder
		sb.WriteString(x)
		for range 1 + r.IntN(3) {
			sb.WriteString(randomPattern(r, depth-1))
		}
		return sb.String()
	}
}

func randomContent(r *rand.Rand, n int) []byte {
	var b []byte
	for range n {
		b = append(b, prefilterAlphabet[r.IntN(len(prefilterAlphabet))]...)
	}
	return b
}

// checkPrefilter compares Apply, and lineMatches when the prefilter
// applies, with the regexp package on one pattern and content. It reports
// whether the prefilter applied and found a match.
func checkPrefilter(t *testing.T, re *regexp.Regexp, content []byte) bool {
	t.Helper()
	pattern := re.String()
	lit, ok := prefilterLiteral(pattern)
	want := re.FindAllSubmatchIndex(content, -1)
	if ok {
		var wantPairs [][]int
		for _, m := range want {
			wantPairs = append(wantPairs, m[:2])
		}
		// Each line alone, a few lines at a time, and as Apply does.
		for _, chunk := range []int{0, 8, chunkLen} {
			if got := lineMatches(re, lit, content, true, chunk); !reflect.DeepEqual(got, want) {
				t.Fatalf("pattern %q, content %q: lineMatches(chunk %d) = %v, want %v", pattern, content, chunk, got, want)
			}
			if got := lineMatches(re, lit, content, false, chunk); !reflect.DeepEqual(got, wantPairs) {
				t.Fatalf("pattern %q, content %q: lineMatches(chunk %d) without groups = %v, want %v", pattern, content, chunk, got, wantPairs)
			}
		}
	}
	// Apply must take the prefilter's path exactly when it applies.
	var used [][]byte
	testHookApplyLines = func(lit []byte) { used = append(used, lit) }
	defer func() { testHookApplyLines = nil }()
	for _, expand := range []bool{false, true} {
		tmpl := "<$0|$1>"
		rx := Regex{Pattern: pattern, Replacement: tmpl, Expand: expand}
		wantOut := re.ReplaceAllLiteral(content, []byte(tmpl))
		if expand {
			wantOut = re.ReplaceAll(content, []byte(tmpl))
		}
		used = nil
		got, n, err := rx.Apply("f", content)
		if ok && (len(used) != 1 || !bytes.Equal(used[0], lit)) || !ok && used != nil {
			t.Fatalf("%+v.Apply(%q) took the prefilter's path with literals %q, want %q (prefilterLiteral ok %v)", rx, content, used, lit, ok)
		}
		if len(want) == 0 {
			if _, isNF := err.(*NotFoundError); !isNF || got != nil || n != 0 {
				t.Fatalf("%+v.Apply(%q) = %q, %d, %v, want a NotFoundError", rx, content, got, n, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, wantOut) || n != len(want) || got == nil {
			t.Fatalf("%+v.Apply(%q) = %q, %d, %v, want %q, %d, nil", rx, content, got, n, err, wantOut, len(want))
		}
	}
	return ok && len(want) > 0
}

// TestPrefilterMatchesRegexp runs hand-written and random patterns over
// random contents through Apply and compares with the regexp package.
func TestPrefilterMatchesRegexp(t *testing.T) {
	hand := []string{
		`compute\((\d+)0003, "abc"\)`, `a`, `ab`, `a+b`, `(a)(b)?c`, `a.b`, `a.`, `.a`,
		`(?s)a.`, `a\s`, `\sa`, `a\S+`, `[^b]a`, `a[^b]`, `(?m)^a`, `(?m)a$`, `(?m)^a$`,
		`(?m)^\w+$`, `(?m)$a`, `a(?m)^`, `^a`, `a$`, `\Aa`, `a\z`, `\ba\b`, `\Ba\B`, `\bab`,
		`a\b`, `\bé`, `é\b`, `(a|b)c`, `a(b|c)+`, `(?:ab){2,}`, `a{2,}`, `(?i)ab`, `a(?i)b`,
		`a\nb`, `a\n`, `é`, `éa`, `ÿ`, `\xff`, `\x{fffd}`, `a\x{fffd}`, `ab|`, `a*b`,
		`(?U)a+b`, `(?U)(a+)(b*)`, `a\W`, `\Wa`, `a[\x00-\x{10FFFF}]`, `a[^\n]+`, `a.*`,
		`.*a.*`, `(?m)^.*a.*$`, `c(a*)(b*)`, `(?P<x>a)(?P<y>b)?`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	var patterns []*regexp.Regexp
	for _, p := range hand {
		patterns = append(patterns, regexp.MustCompile(p))
	}
	for len(patterns) < 800 {
		if re, err := regexp.Compile(randomPattern(r, 3)); err == nil {
			patterns = append(patterns, re)
		}
	}
	applied, matched := 0, 0
	for _, re := range patterns {
		if _, ok := prefilterLiteral(re.String()); ok {
			applied++
		}
		for range 8 {
			if checkPrefilter(t, re, randomContent(r, r.IntN(30))) {
				matched++
			}
		}
	}
	// The comparison means little unless the fast path ran, and found
	// matches, for many of the patterns.
	if applied < len(patterns)/8 || matched < 500 {
		t.Errorf("the prefilter applied to %d of %d patterns and found matches %d times, want more", applied, len(patterns), matched)
	}
}

// TestPrefilterBigFile checks the benchmarks' patterns, and others, on
// lines of the benchmark's file.
func TestPrefilterBigFile(t *testing.T) {
	// Lines 6990 to 7009 and 8990 to 9009 of the file: the regexp package
	// is slow on all of it.
	lines := strings.SplitAfter(string(benchdata.BigSource()), "\n")
	content := []byte(strings.Join(lines[6990:7010], "") + strings.Join(lines[8990:9010], ""))
	for _, p := range []string{
		`compute\((\d+)0003, "abc"\)`, `value_09000 = compute\(90001, "abc"\)`,
		`compute\((\d+)1, "abc"\)`, `(?m)^value_0900\d`, `\bvalues\.md\b`, `(?m)values\.md$`,
	} {
		re := regexp.MustCompile(p)
		if _, ok := prefilterLiteral(p); !ok {
			t.Errorf("prefilterLiteral(%q) does not apply", p)
		}
		checkPrefilter(t, re, content)
	}
}

// FuzzRegexPrefilter compares Apply with the regexp package for any
// pattern that compiles.
func FuzzRegexPrefilter(f *testing.F) {
	f.Add(`compute\((\d+)0003, "abc"\)`, []byte("x = compute(10003, \"abc\")\ncompute(1, \"abc\")\n"))
	f.Add(`(?m)^a\b`, []byte("a\nab\n a\na"))
	f.Add(`\ba+$`, []byte("aa\naa"))
	f.Add(`(?m)a$`, []byte("a\na\r\n"))
	f.Add(`\Aab`, []byte("ab\nab"))
	f.Add(`(?s)a.b`, []byte("a\nb"))
	f.Add(`a\sb`, []byte("a\nb a b"))
	f.Add(`\xffa`, []byte("\xffa ÿa"))
	f.Add(`\x{fffd}a`, []byte("\xffa \xc3a"))
	f.Add(`(?i)éa`, []byte("Éa\néA"))
	f.Add(`(a)|b(c)+d`, []byte("bcd\na"))
	f.Add(`\Bb\B`, []byte("abc\nb\nb"))
	f.Fuzz(func(t *testing.T, pattern string, content []byte) {
		// An empty pattern is refused before matching; long ones and long
		// contents only slow the fuzzing down.
		if pattern == "" || len(pattern) > 64 || len(content) > 1024 {
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		checkPrefilter(t, re, content)
	})
}
