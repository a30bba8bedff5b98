package patch

// Work limits of the line diff, counted in steps of the Myers search
// (diagonals visited plus lines matched). They bound Diff to some tens of
// milliseconds however different the inputs are; past them the diff is
// still correct, only longer than it needs to be.
const (
	// myersBudget is what an exact (shortest) diff of the whole changed
	// region may cost. Edits that touch a few places stay far below it.
	myersBudget = 1 << 22
	// anchoredBudget is shared by the gaps between anchor lines when the
	// exact diff was too costly (many scattered changes, such as a pattern
	// replaced on thousands of lines).
	anchoredBudget = 1 << 23
)

// appendEdits appends to ops an edit script turning the lines a into b.
func appendEdits(ops []op, a, b [][]byte) []op {
	d := newDiffer(a, b)
	d.budget = myersBudget
	if !d.compare(0, len(a), 0, len(b)) {
		d.reset(0, len(a), 0, len(b))
		d.budget = anchoredBudget
		d.anchored()
	}
	return d.appendScript(ops, a, b)
}

// appendScript appends the edit script that the marks describe. Unmarked
// lines form a common subsequence, so walking both sides in step yields it;
// deletions come before insertions in each change, as in git's output.
func (d *differ) appendScript(ops []op, a, b [][]byte) []op {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && d.delA[i]:
			ops = append(ops, op{'-', a[i]})
			i++
		case j < len(b) && d.insB[j]:
			ops = append(ops, op{'+', b[j]})
			j++
		default:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		}
	}
	return ops
}

// differ computes which lines of a are deleted and which lines of b are
// inserted, comparing lines by small integer ids.
type differ struct {
	a, b   []int32
	ids    int    // number of distinct lines
	delA   []bool // delA[i]: line i of a is not kept
	insB   []bool // insB[j]: line j of b is new
	vf, vb []int  // furthest x on each diagonal, forward and backward, offset by off
	off    int
	budget int
}

func newDiffer(a, b [][]byte) *differ {
	d := &differ{
		a:    make([]int32, len(a)),
		b:    make([]int32, len(b)),
		delA: make([]bool, len(a)),
		insB: make([]bool, len(b)),
	}
	id := make(map[string]int32, len(a)+len(b))
	intern := func(line []byte) int32 {
		if n, ok := id[string(line)]; ok {
			return n
		}
		n := int32(len(id))
		id[string(line)] = n
		return n
	}
	for i, l := range a {
		d.a[i] = intern(l)
	}
	for j, l := range b {
		d.b[j] = intern(l)
	}
	d.ids = len(id)
	// The backward search centres on diagonal delta, |delta| <= n+m, and
	// either search spans at most (n+m+1)/2 + 1 diagonals on each side of
	// its centre, counting the neighbours read at the edges.
	d.off = 2*(len(a)+len(b)) + 2
	d.vf = make([]int, 2*d.off+1)
	d.vb = make([]int, 2*d.off+1)
	return d
}

// reset clears the marks of a region whose diff was abandoned.
func (d *differ) reset(aLo, aHi, bLo, bHi int) {
	clear(d.delA[aLo:aHi])
	clear(d.insB[bLo:bHi])
}

// replace marks a region as entirely changed, the always-correct answer.
func (d *differ) replace(aLo, aHi, bLo, bHi int) {
	for i := aLo; i < aHi; i++ {
		d.delA[i] = true
	}
	for j := bLo; j < bHi; j++ {
		d.insB[j] = true
	}
}

// compare marks a shortest edit script between a[aLo:aHi] and b[bLo:bHi]
// with the linear-space divide and conquer of Myers (1986), "An O(ND)
// difference algorithm and its variations", section 4b. It reports false,
// leaving the region's marks incomplete, when the budget runs out.
func (d *differ) compare(aLo, aHi, bLo, bHi int) bool {
	for aLo < aHi && bLo < bHi && d.a[aLo] == d.b[bLo] {
		aLo++
		bLo++
	}
	for aLo < aHi && bLo < bHi && d.a[aHi-1] == d.b[bHi-1] {
		aHi--
		bHi--
	}
	if aLo == aHi || bLo == bHi {
		d.replace(aLo, aHi, bLo, bHi)
		return true
	}
	// Both sides are non-empty and differ at both ends, so the distance is
	// at least 2 and split returns a point strictly inside the optimal
	// path: each half has a smaller distance, and the recursion ends.
	x, y, ok := d.split(aLo, aHi, bLo, bHi)
	if !ok {
		return false
	}
	return d.compare(aLo, x, bLo, y) && d.compare(x, aHi, y, bHi)
}

// split finds the middle snake of a shortest path through the edit graph of
// a[aLo:aHi] and b[bLo:bHi] by searching from both corners at once, and
// returns one end of it, a point on a shortest path.
//
// Paths are followed on the unbounded grid: a move may leave the box, since
// such paths can never reach the far corner, and the first overlap of the
// two searches always lies on a path that stays inside (Myers, lemma 3).
// That spares the bookkeeping of the box's edges.
func (d *differ) split(aLo, aHi, bLo, bHi int) (x, y int, ok bool) {
	a, b := d.a[aLo:aHi], d.b[bLo:bHi]
	n, m := len(a), len(b)
	delta := n - m
	odd := delta&1 != 0
	vf, vb, off := d.vf, d.vb, d.off
	vf[off+1] = 0       // the forward 0-path starts at (0,0)
	vb[off+delta-1] = n // the backward one at (n,m)
	for D := 0; D <= (n+m+1)/2; D++ {
		d.budget -= 2*D + 2
		if d.budget < 0 {
			return 0, 0, false
		}
		for k := -D; k <= D; k += 2 {
			// Extend the furthest (D-1)-path of a neighbouring diagonal
			// by a step down (from k+1) or right (from k-1).
			var x int
			if k == -D || (k != D && vf[off+k-1] < vf[off+k+1]) {
				x = vf[off+k+1]
			} else {
				x = vf[off+k-1] + 1
			}
			y := x - k
			sx, sy := x, y
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			d.budget -= x - sx
			vf[off+k] = x
			if odd && k >= delta-(D-1) && k <= delta+(D-1) && x >= vb[off+k] {
				return aLo + sx, bLo + sy, true
			}
		}
		for k := delta - D; k <= delta+D; k += 2 {
			// The same backwards: a step up (from k-1) or left (from k+1).
			var x int
			if k == delta+D || (k != delta-D && vb[off+k-1] < vb[off+k+1]-1) {
				x = vb[off+k-1]
			} else {
				x = vb[off+k+1] - 1
			}
			y := x - k
			sx, sy := x, y
			for x > 0 && y > 0 && a[x-1] == b[y-1] {
				x--
				y--
			}
			d.budget -= sx - x
			vb[off+k] = x
			if !odd && k >= -D && k <= D && x <= vf[off+k] {
				return aLo + sx, bLo + sy, true
			}
		}
	}
	// Unreachable: the searches meet by D = ceil((n+m)/2).
	panic("patch: diff searches did not meet")
}

// anchored is the fallback when an exact diff of the whole region costs too
// much. Lines that occur exactly once on each side are matched in order
// (the longest increasing run of them, as patience diff does), which cuts
// the region into small gaps diffed exactly. A gap that still costs too much
// is replaced whole.
func (d *differ) anchored() {
	countA := make([]int32, d.ids)
	countB := make([]int32, d.ids)
	posB := make([]int32, d.ids)
	for _, id := range d.a {
		countA[id]++
	}
	for j, id := range d.b {
		countB[id]++
		posB[id] = int32(j)
	}
	type pair struct{ i, j int }
	var pairs []pair
	for i, id := range d.a {
		if countA[id] == 1 && countB[id] == 1 {
			pairs = append(pairs, pair{i, int(posB[id])})
		}
	}

	// Longest increasing subsequence of pairs by j (pairs are sorted by
	// i): tails[l] is the index of the pair ending the best run of length
	// l+1 found so far, prev links each pair to its predecessor.
	tails := make([]int, 0, len(pairs))
	prev := make([]int, len(pairs))
	for p, pr := range pairs {
		lo, hi := 0, len(tails)
		for lo < hi {
			mid := (lo + hi) / 2
			if pairs[tails[mid]].j < pr.j {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		prev[p] = -1
		if lo > 0 {
			prev[p] = tails[lo-1]
		}
		if lo == len(tails) {
			tails = append(tails, p)
		} else {
			tails[lo] = p
		}
	}
	anchors := make([]pair, len(tails))
	if len(tails) > 0 {
		for p, k := tails[len(tails)-1], len(tails)-1; p >= 0; p, k = prev[p], k-1 {
			anchors[k] = pairs[p]
		}
	}

	ai, bj := 0, 0
	gap := func(aHi, bHi int) {
		if !d.compare(ai, aHi, bj, bHi) {
			d.reset(ai, aHi, bj, bHi)
			d.replace(ai, aHi, bj, bHi)
		}
	}
	for _, an := range anchors {
		gap(an.i, an.j)
		ai, bj = an.i+1, an.j+1
	}
	gap(len(d.a), len(d.b))
}
