package patch

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCorpus runs the realistic agent edits of testdata/corpus/<n>-<name>/,
// laid out as golden cases (see runCase): each either applies and gives its
// after tree, or is refused with its error. Many are subtly malformed the
// way model output is: wrong line numbers and counts, whitespace and
// indentation that differ from the file, CRLF files, markdown fences, a
// context line the model misremembered. Their patch.json's description
// says which.
//
// It logs the success rate: go test -run TestCorpus -v ./internal/patch
func TestCorpus(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "corpus", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 30 {
		t.Fatalf("found %d corpus cases, want at least 30", len(dirs))
	}
	type tally struct{ total, applied, refused, tolerant, wrong int }
	var all, flawed tally
	byKind := map[string]*tally{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		var res caseResult
		ok := t.Run(name, func(t *testing.T) {
			res = runCase(t, dir)
		})
		outcome := "WRONG"
		switch {
		case !ok:
		case res.applied && len(res.notes) > 0:
			outcome = "applied, with tolerance: " + strings.Join(res.notes, "; ")
		case res.applied:
			outcome = "applied"
		default:
			outcome = "refused: " + firstLine(res.err.Error())
		}
		if res.flaw != "" {
			outcome = "[" + res.flaw + "] " + outcome
		}
		t.Logf("%-34s %s", name, outcome)

		// The kind is the case name's first word: sr, diff, ap, edits...
		_, kind, _ := strings.Cut(name, "-")
		kind, _, _ = strings.Cut(kind, "-")
		if byKind[kind] == nil {
			byKind[kind] = &tally{}
		}
		counts := []*tally{&all, byKind[kind]}
		if res.flaw != "" {
			counts = append(counts, &flawed)
		}
		for _, c := range counts {
			c.total++
			switch {
			case !ok:
				c.wrong++
			case res.applied:
				c.applied++
				if len(res.notes) > 0 {
					c.tolerant++
				}
			default:
				c.refused++
			}
		}
	}
	pct := func(n, d int) string { return fmt.Sprintf("%d%%", n*100/max(d, 1)) }
	t.Logf("corpus: %d agent edits: %d applied (%s), %d correctly refused (%s), %d wrong; handled as expected: %d/%d (%s)",
		all.total, all.applied, pct(all.applied, all.total), all.refused, pct(all.refused, all.total),
		all.wrong, all.applied+all.refused, all.total, pct(all.applied+all.refused, all.total))
	t.Logf("corpus: %d subtly malformed: %d applied (%s), %d correctly refused with a message naming the fault, %d wrong",
		flawed.total, flawed.applied, pct(flawed.applied, flawed.total), flawed.refused, flawed.wrong)
	t.Logf("corpus: %d of the %d applied edits matched only with tolerance (whitespace, indentation, line numbers, a repaired line)",
		all.tolerant, all.applied)
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		c := byKind[kind]
		t.Logf("corpus: %-6s %2d edits: %2d applied (%d with tolerance), %d correctly refused, %d wrong",
			kind, c.total, c.applied, c.tolerant, c.refused, c.wrong)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
