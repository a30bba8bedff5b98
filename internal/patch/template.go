package patch

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// template is a replacement with $-references, parsed once as
// regexp.Expand reads it, so that the size of each expansion is known
// before it is built: one reference repeated in a large replacement,
// times a large match, would otherwise be allocated before anyone could
// look at it.
type template []tpart

// tpart is literal text, then the group it refers to: the first of
// groups that took part in the match (a name may be given to several
// groups; none for no reference).
type tpart struct {
	lit    string
	groups []int
}

// compileTemplate parses tmpl for re exactly as re.Expand does: "$$" is a
// "$", a "$" that starts no reference is literal, a number is a group
// index (a reference to no group, or to a group that did not take part in
// the match, expands to nothing), anything else a group name.
func compileTemplate(re *regexp.Regexp, tmpl string) template {
	var t template
	var lit strings.Builder
	for len(tmpl) > 0 {
		before, after, ok := strings.Cut(tmpl, "$")
		if !ok {
			break
		}
		lit.WriteString(before)
		tmpl = after
		if tmpl != "" && tmpl[0] == '$' {
			lit.WriteByte('$')
			tmpl = tmpl[1:]
			continue
		}
		name, num, rest, ok := extractRef(tmpl)
		if !ok {
			lit.WriteByte('$')
			continue
		}
		tmpl = rest
		var gs []int
		if num >= 0 {
			gs = []int{num}
		} else {
			for i, n := range re.SubexpNames() {
				if n == name {
					gs = append(gs, i)
				}
			}
		}
		t = append(t, tpart{lit: lit.String(), groups: gs})
		lit.Reset()
	}
	lit.WriteString(tmpl)
	if lit.Len() > 0 {
		t = append(t, tpart{lit: lit.String()})
	}
	return t
}

// extractRef is regexp's extract: the name or number of a reference at
// the start of s (after its "$"), and the text after it.
func extractRef(s string) (name string, num int, rest string, ok bool) {
	if s == "" {
		return
	}
	brace := false
	if s[0] == '{' {
		brace = true
		s = s[1:]
	}
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		i += size
	}
	if i == 0 {
		return
	}
	name = s[:i]
	if brace {
		if i >= len(s) || s[i] != '}' {
			return
		}
		i++
	}
	num = 0
	for j := 0; j < len(name); j++ {
		if name[j] < '0' || '9' < name[j] || num >= 1e8 {
			num = -1
			break
		}
		num = num*10 + int(name[j]) - '0'
	}
	if name[0] == '0' && len(name) > 1 {
		num = -1
	}
	return name, num, s[i:], true
}

// group returns the bounds in match m of the first of gs that took part,
// ok false when none did.
func group(m []int, gs []int) (lo, hi int, ok bool) {
	for _, g := range gs {
		if 2*g+1 < len(m) && m[2*g] >= 0 {
			return m[2*g], m[2*g+1], true
		}
	}
	return 0, 0, false
}

// size is the length of the expansion for match m.
func (t template) size(m []int) int64 {
	var n int64
	for _, p := range t {
		n += int64(len(p.lit))
		if lo, hi, ok := group(m, p.groups); ok {
			n += int64(hi - lo)
		}
	}
	return n
}

// expand appends the expansion for match m of src to dst.
func (t template) expand(dst, src []byte, m []int) []byte {
	for _, p := range t {
		dst = append(dst, p.lit...)
		if lo, hi, ok := group(m, p.groups); ok {
			dst = append(dst, src[lo:hi]...)
		}
	}
	return dst
}
