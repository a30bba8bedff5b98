package benchdata

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestBigSource(t *testing.T) {
	src := BigSource()
	if n := len(src); n < 1<<20 || n > 1<<20+128 {
		t.Errorf("len(BigSource()) = %d, want about 1 MiB (%d to %d)", n, 1<<20, 1<<20+128)
	}
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	var with []int
	for i, l := range lines {
		if strings.Contains(l, "70000003") {
			with = append(with, i)
		}
	}
	if len(with) != 1 || with[0] != 7000 {
		t.Errorf("lines containing 70000003: %v, want [7000]", with)
	}
	if len(lines) <= 9000 || !strings.HasPrefix(lines[9000], `value_09000 = compute(90001, "abc")`) {
		t.Fatalf("line 9000 does not start with %q", `value_09000 = compute(90001, "abc")`)
	}
	if !bytes.Equal(BigSource(), src) {
		t.Error("BigSource() differs between calls")
	}
}

// TestPatterns checks that each pattern matches exactly one line of
// BigSource, and that its replacement yields what the flipped pattern
// matches.
func TestPatterns(t *testing.T) {
	src := BigSource()
	for _, p := range []struct {
		name          string
		pattern, repl func(string) string
		expand        bool
		line          string
	}{
		{"literal", LiteralPattern, LiteralReplacement, false, "value_09000 "},
		{"capture", CapturePattern, CaptureReplacement, true, "value_07000 "},
	} {
		re := regexp.MustCompile(p.pattern("abc"))
		locs := re.FindAllIndex(src, -1)
		if len(locs) != 1 {
			t.Errorf("%s: %d matches, want 1", p.name, len(locs))
			continue
		}
		start := bytes.LastIndexByte(src[:locs[0][0]], '\n') + 1
		if !bytes.HasPrefix(src[start:], []byte(p.line)) {
			t.Errorf("%s: matches %q, want the line starting %q", p.name, src[start:locs[0][1]], p.line)
		}
		var out []byte
		if p.expand {
			out = re.ReplaceAll(src, []byte(p.repl("xyz")))
		} else {
			out = re.ReplaceAllLiteral(src, []byte(p.repl("xyz")))
		}
		if n := len(regexp.MustCompile(p.pattern("xyz")).FindAllIndex(out, -1)); n != 1 || len(out) != len(src) {
			t.Errorf("%s: after the replacement the flipped pattern matches %d times (want 1), length %d -> %d", p.name, n, len(src), len(out))
		}
	}
}
