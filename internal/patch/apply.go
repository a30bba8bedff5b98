package patch

import "errors"

// Apply runs the edit on content and returns the new content and the number
// of matches replaced; every match is replaced, as the seed did. file is only
// used in messages. A pattern that matches nothing is a *NotFoundError.
// content need not be valid UTF-8: the pattern works on bytes.
func (r Regex) Apply(file string, content []byte) (out []byte, matches int, err error) {
	if r.Pattern == "" {
		// The zero Patch of a block in another format: an empty pattern
		// would match everywhere and quietly change nothing.
		return nil, 0, errors.New("the block has no regex edit; apply it with Block.Plan")
	}
	re, err := r.compile()
	if err != nil {
		return nil, 0, err
	}
	if lit, ok := prefilterLiteral(r.Pattern); ok {
		// Only the lines holding a literal every match contains can
		// match; see prefilter.go.
		out, matches = r.applyLines(re, lit, content)
	} else if !r.Expand {
		// ReplaceAllFunc visits exactly the matches ReplaceAllLiteral
		// replaces, so counting there costs no second scan.
		repl := []byte(r.Replacement)
		out = re.ReplaceAllFunc(content, func([]byte) []byte {
			matches++
			return repl
		})
	} else {
		// Expansion needs the groups of each match, which ReplaceAllFunc
		// does not give; FindAll finds the same matches ReplaceAll would.
		found := re.FindAllSubmatchIndex(content, -1)
		matches = len(found)
		if matches > 0 {
			out = make([]byte, 0, len(content)+len(r.Replacement)*matches)
			tmpl := []byte(r.Replacement)
			last := 0
			for _, m := range found {
				out = append(out, content[last:m[0]]...)
				out = re.Expand(out, tmpl, content, m)
				last = m[1]
			}
			out = append(out, content[last:]...)
		}
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
