package patch

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// lcsLen is the textbook O(nm) longest common subsequence, the reference
// for the length of a shortest edit script.
func lcsLen(a, b [][]byte) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case string(a[i]) == string(b[j]):
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// randomLines draws n one-letter lines from the first k letters, so that
// repeated lines, the hard case for a diff, are common.
func randomLines(r *rand.Rand, n, k int) [][]byte {
	ls := make([][]byte, n)
	for i := range ls {
		ls[i] = []byte{byte('a' + r.IntN(k)), '\n'}
	}
	return ls
}

// checkScript verifies that ops turns a into b, and returns its edit count.
func checkScript(t *testing.T, a, b [][]byte, ops []op) int {
	t.Helper()
	var gotA, gotB []string
	edits := 0
	for _, o := range ops {
		if o.kind != '+' {
			gotA = append(gotA, string(o.line))
		}
		if o.kind != '-' {
			gotB = append(gotB, string(o.line))
		}
		if o.kind != ' ' {
			edits++
		}
	}
	join := func(ls [][]byte) string {
		var s strings.Builder
		for _, l := range ls {
			s.Write(l)
		}
		return s.String()
	}
	if strings.Join(gotA, "") != join(a) || strings.Join(gotB, "") != join(b) {
		t.Fatalf("script %v does not turn %q into %q", ops, join(a), join(b))
	}
	return edits
}

func TestMyersIsShortest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		a := randomLines(r, r.IntN(30), 1+r.IntN(6))
		b := randomLines(r, r.IntN(30), 1+r.IntN(6))
		if iter%3 == 0 {
			// Mostly-equal pairs, like real edits.
			b = append([][]byte(nil), a...)
			for range r.IntN(4) {
				if len(b) > 0 {
					b[r.IntN(len(b))] = []byte("x\n")
				}
			}
		}
		got := checkScript(t, a, b, appendEdits(nil, a, b))
		if want := len(a) + len(b) - 2*lcsLen(a, b); got != want {
			t.Fatalf("appendEdits(%q, %q) makes %d edits, want %d", a, b, got, want)
		}
	}
}

// TestDiffOverBudget checks that the bounded paths still give correct
// scripts: the anchored fallback, and a whole-region replacement.
func TestDiffOverBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		a := randomLines(r, r.IntN(60), 1+r.IntN(20))
		b := randomLines(r, r.IntN(60), 1+r.IntN(20))
		for _, budget := range []int{0, 10, 100, 1000} {
			d := newDiffer(a, b)
			d.budget = budget
			d.anchored()
			ops := d.appendScript(nil, a, b)
			checkScript(t, a, b, ops)
		}
	}
}

// TestAnchoredKeepsUniqueLines checks the fallback on the case it exists
// for: many scattered changes between distinct lines.
func TestAnchoredKeepsUniqueLines(t *testing.T) {
	old := splitLines(bigFile(64 << 10))
	new := splitLines(everyNth(bigFile(64<<10), 3))
	d := newDiffer(old, new)
	d.budget = anchoredBudget
	d.anchored()
	got := checkScript(t, old, new, d.appendScript(nil, old, new))
	if want := len(old) + len(new) - 2*lcsLen(old, new); got != want {
		t.Errorf("anchored diff makes %d edits, want %d", got, want)
	}
}

// TestDiffUnbalancedOverBudget: 6000 lines against 6, nearly all deleted,
// take the exact search past its budget (D is near 6000); the diff that
// the fallback makes must still turn one into the other.
func TestDiffUnbalancedOverBudget(t *testing.T) {
	old := []byte(strings.Repeat("a\ne\nb\ne\ne\nc\n", 1000))
	neu := []byte("a\nd\na\nd\na\nb\n")
	checkDiff(t, old, neu, Diff("f", old, neu))
	checkDiff(t, neu, old, Diff("f", neu, old))
}
