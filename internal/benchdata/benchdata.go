// Package benchdata holds the inputs shared by the benchmark command
// (./bench) and the Go benchmarks of the packages it measures, so that
// both time the same file with the same patches.
package benchdata

import (
	"bytes"
	"fmt"
)

// BigSource returns about 1 MiB of Python-like source (just over 1<<20
// bytes), one assignment a line:
//
//	value_00000 = compute(1, "abc")  # keep in sync with the table in docs/values.md
//	value_00001 = compute(11, "abc")  # keep in sync with the table in docs/values.md
//
// Line i (counting from 0) assigns value_%05d with the argument i*10+1,
// except line 7000, whose argument is 70000003: the only one ending in
// 0003. The literal patch (LiteralPattern) names line 9000 by its
// identifier; the capture patch (CapturePattern) has its prefix
// "compute(" on every line and its match on line 7000 alone. Each call
// returns a new slice.
func BigSource() []byte {
	var b bytes.Buffer
	b.Grow(1<<20 + 128)
	for i := 0; b.Len() < 1<<20; i++ {
		arg := i*10 + 1
		if i == 7000 {
			arg = 70000003
		}
		fmt.Fprintf(&b, "value_%05d = compute(%d, \"abc\")  # keep in sync with the table in docs/values.md\n", i, arg)
	}
	return b.Bytes()
}

// LiteralPattern is the regex naming line 9000 of BigSource by its
// identifier, where the line's string is from ("abc" in BigSource).
func LiteralPattern(from string) string {
	return `value_09000 = compute\(90001, "` + from + `"\)`
}

// LiteralReplacement is LiteralPattern's replacement, setting line 9000's
// string to to. It has no $ to expand.
func LiteralReplacement(to string) string {
	return `value_09000 = compute(90001, "` + to + `")`
}

// CapturePattern is the regex matching line 7000 of BigSource, the only
// argument ending in 0003, where the line's string is from. Its prefix
// "compute(" is on every line.
func CapturePattern(from string) string {
	return `compute\((\d+)0003, "` + from + `"\)`
}

// CaptureReplacement is CapturePattern's replacement, to be expanded: it
// keeps the argument (${1}) and sets the string to to.
func CaptureReplacement(to string) string {
	return `compute(${1}0003, "` + to + `")`
}
