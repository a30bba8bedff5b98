package patch

import (
	"slices"
	"strings"
)

// Work limits of the closest-lines search, which runs only for a refusal
// but may meet a 1 MiB file and a long search text.
const (
	// closestPairs bounds the line comparisons of the window scan; past
	// it, only a sample of the looked-for lines is compared.
	closestPairs = 1 << 20
	// profileLen is how much of a line takes part in comparisons.
	profileLen = 256
	// percentLines bounds the lines whose edit distance gives the
	// reported similarity.
	percentLines = 200
	// minScore is the average per-line similarity below which no window
	// is worth showing.
	minScore = 0.3
)

// closest finds the window of d, as long as want, whose lines are most
// similar to want's, and reports it with a similarity percentage; nil when
// the file is empty or nothing in it is similar.
//
// Windows are ranked by the mean Dice coefficient of the character bigrams
// of paired lines, whitespace at both ends ignored: cheap enough to score
// every window of a large file, and tolerant of the small slips that made
// the match fail. The reported percentage is finer: one minus the edit
// distance over the lengths of the winner's lines, each side dedented.
func closest(d *doc, want []string) *Closest {
	m, n := len(d.lines), len(want)
	if m == 0 || n == 0 {
		return nil
	}
	w := min(n, m)
	windows := m - w + 1
	ks := sample(want[:w], max(1, closestPairs/windows))
	wp := make([][]uint16, len(ks))
	for j, k := range ks {
		wp[j] = bigrams(want[k])
	}
	fp := make([][]uint16, m)
	for i := range fp {
		fp[i] = bigrams(d.lines[i].text)
	}
	best, bestScore := 0, -1.0
	for i := 0; i < windows; i++ {
		s := 0.0
		for j, k := range ks {
			s += dice(wp[j], fp[i+k])
		}
		if s > bestScore {
			best, bestScore = i, s
		}
	}
	if bestScore/float64(len(ks)) < minScore {
		return nil
	}
	lines := d.texts(best, best+w)
	return &Closest{Start: best + 1, Lines: lines, Percent: similarity(want, lines)}
}

// sample picks at most k indices of lines, evenly spread over the
// non-blank ones when there are any.
func sample(lines []string, k int) []int {
	var idx []int
	for i, l := range lines {
		if trimRight(l) != "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		for i := range lines {
			idx = append(idx, i)
		}
	}
	if len(idx) <= k {
		return idx
	}
	out := make([]int, k)
	for j := range out {
		out[j] = idx[j*len(idx)/k]
	}
	return out
}

// bigrams returns the sorted character bigrams of a line's trimmed text (a
// single character counts as one bigram of its own).
func bigrams(s string) []uint16 {
	s = trimSpace(s)
	if len(s) > profileLen {
		s = s[:profileLen]
	}
	switch len(s) {
	case 0:
		return nil
	case 1:
		return []uint16{uint16(s[0])}
	}
	out := make([]uint16, len(s)-1)
	for i := range out {
		out[i] = uint16(s[i])<<8 | uint16(s[i+1])
	}
	slices.Sort(out)
	return out
}

// dice is the Dice coefficient of two sorted bigram multisets; two blank
// lines are identical, a blank and a non-blank line share nothing.
func dice(a, b []uint16) float64 {
	if len(a) == 0 || len(b) == 0 {
		if len(a) == len(b) {
			return 1
		}
		return 0
	}
	common, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			common++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return 2 * float64(common) / float64(len(a)+len(b))
}

// similarity compares want with the window got line by line (got may be
// shorter), each side dedented by its common indentation, and returns the
// share of characters that need no edit, in percent, rounded down.
func similarity(want, got []string) int {
	want, got = dedent(want), dedent(got)
	dist, total := 0, 0
	for k := 0; k < min(len(want), percentLines); k++ {
		a := clip(trimRight(want[k]))
		b := ""
		if k < len(got) {
			b = clip(trimRight(got[k]))
		}
		dist += levenshtein(a, b)
		total += max(len(a), len(b))
	}
	if total == 0 {
		return 100
	}
	return (total - dist) * 100 / total
}

func clip(s string) string {
	if len(s) > profileLen {
		return s[:profileLen]
	}
	return s
}

// dedent removes from each line as many leading bytes as the least
// indented non-blank line has.
func dedent(lines []string) []string {
	least := -1
	for _, l := range lines {
		if trimRight(l) == "" {
			continue
		}
		ind, _ := splitIndent(l)
		if least < 0 || len(ind) < least {
			least = len(ind)
		}
	}
	if least <= 0 {
		return lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= least && strings.TrimLeft(l[:least], " \t") == "" {
			out[i] = l[least:]
		} else {
			out[i] = strings.TrimLeft(l, " \t")
		}
	}
	return out
}

// levenshtein is the byte edit distance between a and b.
func levenshtein(a, b string) int {
	if a == b {
		return 0
	}
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			next := min(row[j]+1, row[j-1]+1, diag+cost)
			diag = row[j]
			row[j] = next
		}
	}
	return row[len(b)]
}
