package patch

import (
	"encoding/json"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Regex is the regular-expression edit of the seed's senders: every match of
// Pattern in the target file is replaced by Replacement.
type Regex struct {
	Pattern     string // Go RE2 syntax
	Replacement string // inserted literally unless Expand
	// Expand makes $1, ${1} and ${name} in Replacement refer to the
	// pattern's groups ($$ is a literal $). It is off by default because
	// senders written for literal replacement put prices and shell
	// variables in their text.
	Expand bool
}

// decodeRegex validates the members of a regex edit, so that a block that
// parses can always be applied. field names the edit in messages ("patch",
// "edits[2]"); outerExpand is the block-level "expand", which older
// senders put beside "patch".
func decodeRegex(obj map[string]json.RawMessage, field string, outerExpand *bool) (Regex, error) {
	var r Regex
	if isBlank(obj["pattern"]) {
		return r, missing(field + ".pattern")
	}
	var err error
	if r.Pattern, err = stringField(obj, "pattern"); err != nil {
		return r, retag(err, field+".pattern")
	}
	if len(r.Pattern) > MaxPatternLen {
		return r, invalid(field+".pattern", fmt.Sprintf("longer than %d bytes", MaxPatternLen))
	}
	// Parsing is all of regexp.Compile that can fail (its errors are the
	// parser's), at about half the cost: the pattern is compiled again
	// when the patch is applied.
	re, err := syntax.Parse(r.Pattern, syntax.Perl)
	if err != nil {
		return r, invalid(field+".pattern", err.Error())
	}
	// An empty replacement deletes the matches, so only absence is missing.
	if raw := obj["replacement"]; raw == nil || isNull(raw) {
		if raw := obj["replace"]; raw != nil && !isNull(raw) {
			return r, invalid(field+".replace", `a regex edit takes "replacement", not "replace"`)
		}
		return r, missing(field + ".replacement")
	}
	if r.Replacement, err = stringField(obj, "replacement"); err != nil {
		return r, retag(err, field+".replacement")
	}
	inner, err := boolField(obj, "expand", field+".expand")
	if err != nil {
		return r, err
	}
	// The more specific setting wins when a sender gives both.
	switch {
	case inner != nil:
		r.Expand = *inner
	case outerExpand != nil:
		r.Expand = *outerExpand
	}
	if r.Expand {
		if err := checkTemplate(parsedGroups{re.MaxCap(), re.CapNames()}, r.Replacement); err != nil {
			return r, invalid(field+".replacement", err.Error())
		}
	}
	return r, nil
}

// retag renames the field of a FieldError produced for a nested member.
func retag(err error, field string) error {
	fe, ok := err.(*FieldError)
	if !ok {
		return err
	}
	re := invalid(field, strings.TrimPrefix(fe.Msg, "Invalid field: "+fe.Name+": "))
	re.Kind = fe.Kind
	return re
}

func (r Regex) compile() (*regexp.Regexp, error) {
	re, err := regexp.Compile(r.Pattern)
	if err != nil {
		return nil, fmt.Errorf("compile pattern: %w", err)
	}
	return re, nil
}

// groups is what checkTemplate needs of a pattern: *regexp.Regexp has it,
// and parsedGroups gives it from the parsed pattern.
type groups interface {
	NumSubexp() int
	SubexpIndex(name string) int
}

// parsedGroups are the groups of a parsed pattern, as regexp.Compile would
// count and name them (MaxCap and CapNames of the parse, before Simplify).
type parsedGroups struct {
	n     int
	names []string // index 0 is the whole match
}

func (g parsedGroups) NumSubexp() int { return g.n }

func (g parsedGroups) SubexpIndex(name string) int {
	if name != "" {
		for i, s := range g.names {
			if s == name {
				return i
			}
		}
	}
	return -1
}

// checkTemplate refuses a replacement whose $-references name no group of
// re. regexp.Expand silently inserts nothing for them, and the commonest
// case, "$1x" (which means the group named "1x", not group 1 then "x"),
// would quietly corrupt the file.
func checkTemplate(re groups, tmpl string) error {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '$' {
			continue
		}
		name, width, braced := scanRef(tmpl[i+1:])
		switch {
		case width == 0:
			// "$$" and a "$" that starts no reference are literal text.
			if strings.HasPrefix(tmpl[i+1:], "$") {
				i++
			}
			continue
		case groupExists(re, name):
			i += width
			continue
		}
		ref := "$" + name
		if braced {
			ref = "${" + name + "}"
		}
		msg := fmt.Sprintf("%s refers to no group of the pattern (it has %d)", ref, re.NumSubexp())
		if digits := leadingDigits(name); !braced && digits != "" && digits != name {
			msg += fmt.Sprintf("; write ${%s}%s for group %s followed by %q", digits, name[len(digits):], digits, name[len(digits):])
		}
		return fmt.Errorf("%s; use $$ for a literal $", msg)
	}
	return nil
}

// scanRef reads the reference after a '$' the way regexp.Expand does: a
// non-empty run of letters, digits and underscores, optionally in braces.
// width is the number of bytes consumed, 0 when s starts no reference.
func scanRef(s string) (name string, width int, braced bool) {
	rest := s
	if strings.HasPrefix(rest, "{") {
		braced = true
		rest = rest[1:]
	}
	n := 0
	for n < len(rest) {
		r, size := utf8.DecodeRuneInString(rest[n:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		n += size
	}
	if n == 0 {
		return "", 0, false
	}
	name = rest[:n]
	if !braced {
		return name, n, false
	}
	if n == len(rest) || rest[n] != '}' {
		return "", 0, false
	}
	return name, n + 2, true
}

// groupExists follows regexp.Expand: a plain decimal number without leading
// zeros is a group index, anything else a group name.
func groupExists(re groups, name string) bool {
	if d := leadingDigits(name); d == name && (len(d) == 1 || d[0] != '0') && len(d) <= 9 {
		n := 0
		for _, c := range []byte(d) {
			n = n*10 + int(c-'0')
		}
		return n <= re.NumSubexp()
	}
	return re.SubexpIndex(name) >= 0
}

func leadingDigits(s string) string {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return s[:n]
}
