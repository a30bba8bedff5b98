package patch

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/patchd/patchd/internal/benchdata"
)

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		r       Regex
		content string
		want    string
		matches int
	}{
		{name: "one match", r: Regex{Pattern: "world", Replacement: "there"}, content: "hello world\n", want: "hello there\n", matches: 1},
		{name: "every match", r: Regex{Pattern: `\bfoo\b`, Replacement: "bar"}, content: "foo foo\nfood foo\n", want: "bar bar\nfood bar\n", matches: 3},
		{name: "literal dollar", r: Regex{Pattern: `(\d+) USD`, Replacement: "$1 EUR"}, content: "5 USD", want: "$1 EUR", matches: 1},
		{name: "expand", r: Regex{Pattern: `(\d+) USD`, Replacement: "$1 EUR", Expand: true}, content: "5 USD, 7 USD", want: "5 EUR, 7 EUR", matches: 2},
		{name: "expand names and $$", r: Regex{Pattern: `(?P<k>\w+)=(?P<v>\w+)`, Replacement: "${v}=${k} $$", Expand: true}, content: "a=b", want: "b=a $", matches: 1},
		{name: "deletion", r: Regex{Pattern: `(?m)^\s*debug\(\)\n`, Replacement: ""}, content: "a\n  debug()\nb\n", want: "a\nb\n", matches: 1},
		{name: "empty matches", r: Regex{Pattern: `x*`, Replacement: "-"}, content: "abxc", want: "-a-b-c-", matches: 4},
		{name: "empty content", r: Regex{Pattern: `^`, Replacement: ""}, content: "", want: "", matches: 1},
		{name: "invalid utf-8", r: Regex{Pattern: `b+`, Replacement: "B"}, content: "\xff\xfebb\xc3", want: "\xff\xfeB\xc3", matches: 1},
		{name: "byte pattern", r: Regex{Pattern: `\xff`, Replacement: "?"}, content: "a\xffb", want: "a\xffb", matches: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := tt.r.Apply("f.txt", []byte(tt.content))
			if tt.matches == 0 {
				var nf *NotFoundError
				if !errors.As(err, &nf) || err.Error() != "pattern not found in f.txt" {
					t.Fatalf("%+v.Apply(%q) error = %v, want pattern not found in f.txt", tt.r, tt.content, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%+v.Apply(%q) error = %v", tt.r, tt.content, err)
			}
			if string(got) != tt.want || n != tt.matches {
				t.Errorf("%+v.Apply(%q) = %q, %d, want %q, %d", tt.r, tt.content, got, n, tt.want, tt.matches)
			}
			if got == nil {
				t.Errorf("%+v.Apply(%q) = nil, want non-nil content", tt.r, tt.content)
			}
		})
	}
}

func TestApplyBadPattern(t *testing.T) {
	_, _, err := Regex{Pattern: "("}.Apply("f", []byte("x"))
	if err == nil || err.Error() != "compile pattern: error parsing regexp: missing closing ): `(`" {
		t.Errorf("Apply with pattern %q error = %v, want a compile error", "(", err)
	}
}

// TestApplyMatchesRegexp checks that Apply replaces exactly what the
// regexp package's ReplaceAll functions replace, and counts as FindAll does.
func TestApplyMatchesRegexp(t *testing.T) {
	patterns := []string{`a`, `a*`, `b?`, `^`, `$`, `(?m)^`, `(?m)$`, `\b`, `(a)(b)?`, `(?P<x>[ab]+)|c`, `.`, `(?s).`, `\n`, `a|`, `(?U)a+`}
	templates := []string{"", "X", "$1", "${1}", "$x", "$$", "[$0]", "${2}$1"}
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("abc\n\xff")
	for range 2000 {
		content := make([]byte, r.IntN(12))
		for i := range content {
			content[i] = alphabet[r.IntN(len(alphabet))]
		}
		re := regexp.MustCompile(patterns[r.IntN(len(patterns))])
		tmpl := templates[r.IntN(len(templates))]
		wantN := len(re.FindAllIndex(content, -1))
		for _, expand := range []bool{false, true} {
			rx := Regex{Pattern: re.String(), Replacement: tmpl, Expand: expand}
			want := re.ReplaceAllLiteral(content, []byte(tmpl))
			if expand {
				want = re.ReplaceAll(content, []byte(tmpl))
			}
			got, n, err := rx.Apply("f", content)
			if wantN == 0 {
				if err == nil {
					t.Fatalf("%+v.Apply(%q) error = nil, want not found", rx, content)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, want) || n != wantN {
				t.Fatalf("%+v.Apply(%q) = %q, %d, %v, want %q, %d, nil", rx, content, got, n, err, want, wantN)
			}
		}
	}
}

// BenchmarkApply1MiB is the expanding pattern of bench/e2e.go's bigPatterns
// on the same file: its prefix "compute(" is on every line, its match on one.
func BenchmarkApply1MiB(b *testing.B) {
	content := benchdata.BigSource()
	r := Regex{Pattern: benchdata.CapturePattern("abc"), Replacement: benchdata.CaptureReplacement("xyz"), Expand: true}
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := r.Apply("big.txt", content); err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkApply1MiBLiteral(b *testing.B) {
	content := bigFile(1 << 20)
	r := Regex{Pattern: `line 12000 `, Replacement: `LINE 12000 `}
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := r.Apply("big.txt", content); err != nil || n != 1 {
			b.Fatal(n, err)
		}
	}
}
