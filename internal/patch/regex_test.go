package patch

import (
	"regexp"
	"testing"
)

func TestCheckTemplate(t *testing.T) {
	tests := []struct {
		pattern, tmpl string
		want          string // "" for no error
	}{
		{`(a)(b)`, `$1 $2 ${1}${2} $0`, ""},
		{`(a)`, `$$1 $$ $`, ""},
		{`(a)`, `$ {x} $. $-`, ""},
		{`(a)`, `${1`, ""}, // not a reference: literal text, as in regexp.Expand
		{`(?P<name>a)`, `$name ${name}x`, ""},
		{`(?P<n_1>a)`, `$n_1`, ""},
		{`(a)`, `$2`, "$2 refers to no group of the pattern (it has 1); use $$ for a literal $"},
		{`(a)`, `${1}x $1x`, `$1x refers to no group of the pattern (it has 1); write ${1}x for group 1 followed by "x"; use $$ for a literal $`},
		{`(a)`, `${1x}`, "${1x} refers to no group of the pattern (it has 1); use $$ for a literal $"},
		{`(a)`, `$01`, "$01 refers to no group of the pattern (it has 1); use $$ for a literal $"},
		{`a`, `$name`, "$name refers to no group of the pattern (it has 0); use $$ for a literal $"},
		{`(a)`, `$1é`, `$1é refers to no group of the pattern (it has 1); write ${1}é for group 1 followed by "é"; use $$ for a literal $`},
		{`(a)`, `$99999999999`, "$99999999999 refers to no group of the pattern (it has 1); use $$ for a literal $"},
	}
	for _, tt := range tests {
		err := checkTemplate(regexp.MustCompile(tt.pattern), tt.tmpl)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("checkTemplate(%q, %q) = %q, want %q", tt.pattern, tt.tmpl, got, tt.want)
		}
	}
}
