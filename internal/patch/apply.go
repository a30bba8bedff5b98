package patch

import (
	"errors"
	"regexp"
)

// Apply runs the edit on content and returns the new content and the number
// of matches replaced; every match is replaced, as the seed did. file is only
// used in messages. A pattern that matches nothing is a *NotFoundError.
// content need not be valid UTF-8: the pattern works on bytes.
func (r Regex) Apply(file string, content []byte) (out []byte, matches int, err error) {
	return r.apply(file, content, unlimitedRoom(), stopper{})
}

// checkEvery is how many matches a replacement makes between two looks at
// its stopper.
const checkEvery = 1024

// apply is Apply within rm, stopping once st says so. The output's size is
// followed match by match, and an edit that would pass rm fails before the
// content past it is built.
func (r Regex) apply(file string, content []byte, rm room, st stopper) (out []byte, matches int, err error) {
	if r.Pattern == "" {
		// The zero Patch of a block in another format: an empty pattern
		// would match everywhere and quietly change nothing.
		return nil, 0, errors.New("the block has no regex edit; apply it with Block.Plan")
	}
	re, err := r.compile()
	if err != nil {
		return nil, 0, err
	}
	if err := st.stopped(); err != nil {
		return nil, 0, err
	}
	if lit, ok := prefilterLiteral(r.Pattern); ok {
		// Only the lines holding a literal every match contains can
		// match; see prefilter.go.
		out, matches, err = r.applyLines(re, lit, content, rm, st)
	} else if !r.Expand {
		out, matches, err = r.replaceLiteral(re, content, rm, st)
	} else {
		// Expansion needs the groups of each match, which ReplaceAllFunc
		// does not give; FindAll finds the same matches ReplaceAll would.
		t := compileTemplate(re, r.Replacement)
		var found [][]int
		if found, err = findAll(re, content, true, rm, st); err == nil && len(found) > 0 {
			matches = len(found)
			b := expander{t: t, src: content, rm: rm, st: st, size: int64(len(content))}
			b.out = make([]byte, 0, min(int64(len(content))+int64(len(r.Replacement))*int64(matches), rm.max))
			last := 0
			for _, m := range found {
				if err = b.replace(last, m); err != nil {
					break
				}
				last = m[1]
			}
			out = append(b.out, content[last:]...)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if matches == 0 {
		return nil, 0, &NotFoundError{File: file, Pattern: r.Pattern}
	}
	if out == nil {
		// An emptied file is still a file; nil means "no file" to Diff.
		out = []byte{}
	}
	return out, matches, nil
}

// replaceLiteral replaces every match by the literal replacement.
// ReplaceAllFunc visits exactly the matches ReplaceAllLiteral replaces, so
// counting there costs no second scan; its callback is also where the size
// is followed and the stopper looked at (a panic is the only way out of
// it).
func (r Regex) replaceLiteral(re *regexp.Regexp, content []byte, rm room, st stopper) (out []byte, matches int, err error) {
	defer recoverAbort(&err)
	repl := []byte(r.Replacement)
	size := int64(len(content))
	out = re.ReplaceAllFunc(content, func(m []byte) []byte {
		matches++
		// The size the result would have if this were the last match.
		size += int64(len(repl)) - int64(len(m))
		if err := rm.over(size); err != nil {
			panic(abort{err})
		}
		if matches%checkEvery == 0 {
			if err := st.stopped(); err != nil {
				panic(abort{err})
			}
		}
		return repl
	})
	return out, matches, nil
}

// matchCost is what FindAll keeps per match, besides 8 bytes per index: a
// slice header.
const matchCost = 24

// findAll returns the matches of re in b as FindAllIndex (or
// FindAllSubmatchIndex) does, but no more of them than rm leaves room to
// track: every match costs memory even when its replacement is empty, so a
// pattern that matches at every byte of a large file fails on rm instead
// of taking gigabytes.
func findAll(re *regexp.Regexp, b []byte, submatch bool, rm room, st stopper) ([][]int, error) {
	if err := st.stopped(); err != nil {
		return nil, err
	}
	per := int64(matchCost + 16)
	if submatch {
		per = int64(matchCost + 16*(re.NumSubexp()+1))
	}
	n := int(min(rm.max/per, int64(len(b))+1))
	var found [][]int
	if submatch {
		found = re.FindAllSubmatchIndex(b, n+1)
	} else {
		found = re.FindAllIndex(b, n+1)
	}
	if len(found) > n {
		e := rm.limit
		return nil, &e
	}
	return found, st.stopped()
}

// expander builds the output of an expanding replacement, match by match,
// checking its size against rm before each expansion.
type expander struct {
	t    template
	src  []byte
	out  []byte
	rm   room
	st   stopper
	size int64 // of the result if the current match were the last
	n    int
}

// replace appends src[last:m[0]] and the expansion of match m.
func (b *expander) replace(last int, m []int) error {
	b.size += b.t.size(m) - int64(m[1]-m[0])
	if err := b.rm.over(b.size); err != nil {
		return err
	}
	if b.n++; b.n%checkEvery == 0 {
		if err := b.st.stopped(); err != nil {
			return err
		}
	}
	b.out = append(b.out, b.src[last:m[0]]...)
	b.out = b.t.expand(b.out, b.src, m)
	return nil
}
