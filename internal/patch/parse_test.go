package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// valid is a complete block; tests derive bodies from it with with().
const valid = `{"id": "P8.13.22", "role": "ui_patch", "target_file": "src/app.py",
 "description": "rename", "patch": {"pattern": "old", "replacement": "new"},
 "metadata": {"author": "me", "source": "gpt", "n": 12345678901234567890}, "tag": "t1"}`

// with returns the valid block with members replaced (a nil value removes
// the member), marshalled in a fixed order.
func with(changes map[string]any) string {
	m := map[string]any{}
	if err := json.Unmarshal([]byte(valid), &m); err != nil {
		panic(err)
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// raw is a member value given as JSON text, so that with() can set null.
type raw string

func (r raw) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  string
		field string // for *FieldError; "" means *SyntaxError
	}{
		// Presence, in the order id, role, target_file, patch.
		{name: "empty object", body: `{}`, want: "Missing required field: id", field: "id"},
		{name: "only id", body: `{"id":"a"}`, want: "Missing required field: role", field: "role"},
		{name: "no role nor target_file", body: with(map[string]any{"role": nil, "target_file": nil}), want: "Missing required field: role", field: "role"},
		{name: "no target_file nor patch", body: with(map[string]any{"target_file": nil, "patch": nil}), want: "Missing required field: target_file", field: "target_file"},
		{name: "no patch", body: with(map[string]any{"patch": nil}), want: "Missing required field: patch", field: "patch"},
		{name: "null id", body: with(map[string]any{"id": raw("null")}), want: "Missing required field: id", field: "id"},
		{name: "empty role", body: with(map[string]any{"role": ""}), want: "Missing required field: role", field: "role"},
		{name: "empty target_file", body: with(map[string]any{"target_file": ""}), want: "Missing required field: target_file", field: "target_file"},
		{name: "null patch", body: with(map[string]any{"patch": raw("null")}), want: "Missing required field: patch", field: "patch"},
		{name: "empty string patch", body: with(map[string]any{"patch": ""}), want: "Missing required field: patch", field: "patch"},
		{name: "presence before type", body: `{"id": 5, "target_file": "a"}`, want: "Missing required field: role", field: "role"},
		{name: "no pattern", body: with(map[string]any{"patch": map[string]any{"replacement": "x"}}), want: "Missing required field: patch.pattern", field: "patch.pattern"},
		{name: "empty pattern", body: with(map[string]any{"patch": map[string]any{"pattern": "", "replacement": "x"}}), want: "Missing required field: patch.pattern", field: "patch.pattern"},
		{name: "no replacement", body: with(map[string]any{"patch": map[string]any{"pattern": "x"}}), want: "Missing required field: patch.replacement", field: "patch.replacement"},
		{name: "null replacement", body: with(map[string]any{"patch": map[string]any{"pattern": "x", "replacement": raw("null")}}), want: "Missing required field: patch.replacement", field: "patch.replacement"},

		// Types.
		{name: "numeric id", body: with(map[string]any{"id": 5}), want: "Invalid field: id: must be a string, not a number", field: "id"},
		{name: "boolean role", body: with(map[string]any{"role": true}), want: "Invalid field: role: must be a string, not a boolean", field: "role"},
		{name: "false role", body: with(map[string]any{"role": false}), want: "Invalid field: role: must be a string, not a boolean", field: "role"},
		{name: "array target_file", body: with(map[string]any{"target_file": []string{"a"}}), want: "Invalid field: target_file: must be a string, not an array", field: "target_file"},
		// A string that is no text patchd reads, and a list whose element is
		// no edit, say what was expected (issue 12).
		{name: "string patch", body: with(map[string]any{"patch": "s/a/b/"}), want: "Invalid field: patch: " + wantStringShapes, field: "patch"},
		{name: "array patch", body: with(map[string]any{"patch": []int{1}}), want: "Invalid field: patch[0]: must be an object, not a number", field: "patch[0]"},
		{name: "numeric pattern", body: with(map[string]any{"patch": map[string]any{"pattern": 1, "replacement": "x"}}), want: "Invalid field: patch.pattern: must be a string, not a number", field: "patch.pattern"},
		{name: "object replacement", body: with(map[string]any{"patch": map[string]any{"pattern": "a", "replacement": map[string]any{}}}), want: "Invalid field: patch.replacement: must be a string, not an object", field: "patch.replacement"},
		{name: "string expand", body: with(map[string]any{"expand": "yes"}), want: "Invalid field: expand: must be a boolean (true or false), not a string", field: "expand"},
		{name: "numeric patch.expand", body: with(map[string]any{"patch": map[string]any{"pattern": "a", "replacement": "b", "expand": 1}}), want: "Invalid field: patch.expand: must be a boolean (true or false), not a number", field: "patch.expand"},
		{name: "numeric description", body: with(map[string]any{"description": 1}), want: "Invalid field: description: must be a string, not a number", field: "description"},
		{name: "object tag", body: with(map[string]any{"tag": map[string]any{}}), want: "Invalid field: tag: must be a string, not an object", field: "tag"},
		{name: "string metadata", body: with(map[string]any{"metadata": "x"}), want: "Invalid field: metadata: must be an object, not a string", field: "metadata"},
		{name: "array metadata", body: with(map[string]any{"metadata": []any{}}), want: "Invalid field: metadata: must be an object, not an array", field: "metadata"},

		// Ids.
		{name: "id with slash", body: with(map[string]any{"id": "a/b"}), want: `Invalid field: id: character '/' at position 1 is not allowed (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "id escaping", body: with(map[string]any{"id": "../x"}), want: `Invalid field: id: character '/' at position 2 is not allowed (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "dot id", body: with(map[string]any{"id": "."}), want: `Invalid field: id: must not start with '.' (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "dot dot id", body: with(map[string]any{"id": ".."}), want: `Invalid field: id: must not start with '.' (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "hidden id", body: with(map[string]any{"id": ".git"}), want: `Invalid field: id: must not start with '.' (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "id with space", body: with(map[string]any{"id": "P 1"}), want: `Invalid field: id: character ' ' at position 1 is not allowed (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "id with NUL", body: with(map[string]any{"id": "P\u0000"}), want: `Invalid field: id: character '\x00' at position 1 is not allowed (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "non-ASCII id", body: with(map[string]any{"id": "Pé"}), want: `Invalid field: id: character 'é' at position 1 is not allowed (use letters A-Z a-z, digits 0-9 and . _ : -)`, field: "id"},
		{name: "long id", body: with(map[string]any{"id": strings.Repeat("a", 129)}), want: "Invalid field: id: longer than 128 characters", field: "id"},

		// Patterns and replacements.
		{name: "unbalanced pattern", body: with(map[string]any{"patch": map[string]any{"pattern": "(", "replacement": "x"}}), want: "Invalid field: patch.pattern: error parsing regexp: missing closing ): `(`", field: "patch.pattern"},
		{name: "lookahead pattern", body: with(map[string]any{"patch": map[string]any{"pattern": "a(?=b)", "replacement": "x"}}), want: "Invalid field: patch.pattern: error parsing regexp: invalid or unsupported Perl syntax: `(?=`", field: "patch.pattern"},
		{name: "huge repeat", body: with(map[string]any{"patch": map[string]any{"pattern": "a{1001}", "replacement": "x"}}), want: "Invalid field: patch.pattern: error parsing regexp: invalid repeat count: `{1001}`", field: "patch.pattern"},
		{name: "long pattern", body: with(map[string]any{"patch": map[string]any{"pattern": strings.Repeat("a", MaxPatternLen+1), "replacement": "x"}}), want: "Invalid field: patch.pattern: longer than 65536 bytes", field: "patch.pattern"},
		{name: "expand with $1x", body: with(map[string]any{"patch": map[string]any{"pattern": "(a)", "replacement": "$1x", "expand": true}}), want: `Invalid field: patch.replacement: $1x refers to no group of the pattern (it has 1); write ${1}x for group 1 followed by "x"; use $$ for a literal $`, field: "patch.replacement"},
		{name: "expand with missing group", body: with(map[string]any{"patch": map[string]any{"pattern": "(a)", "replacement": "$2"}, "expand": true}), want: `Invalid field: patch.replacement: $2 refers to no group of the pattern (it has 1); use $$ for a literal $`, field: "patch.replacement"},
		{name: "expand with unknown name", body: with(map[string]any{"patch": map[string]any{"pattern": "(?P<word>a)", "replacement": "${Word}", "expand": true}}), want: `Invalid field: patch.replacement: ${Word} refers to no group of the pattern (it has 1); use $$ for a literal $`, field: "patch.replacement"},

		// Limits.
		{name: "huge description", body: with(map[string]any{"description": strings.Repeat("d", MaxDescriptionLen+1)}), want: "Invalid field: description: longer than 65536 bytes", field: "description"},
		{name: "long role", body: with(map[string]any{"role": strings.Repeat("r", MaxRoleLen+1)}), want: "Invalid field: role: longer than 128 characters", field: "role"},

		// Not one JSON object.
		{name: "empty body", body: ``, want: "malformed JSON at offset 0: empty body, want a JSON object"},
		{name: "blank body", body: " \n\t", want: "malformed JSON at offset 3: empty body, want a JSON object"},
		{name: "truncated", body: `{"id": "a"`, want: "malformed JSON at offset 10: unexpected end of JSON input"},
		{name: "missing value", body: `{"id": "a", "role":}`, want: "malformed JSON at offset 20: invalid character '}' looking for beginning of value"},
		{name: "trailing comma", body: `{"id": "a",}`, want: "malformed JSON at offset 12: invalid character '}' looking for beginning of object key string"},
		{name: "single quotes", body: `{'id': 'a'}`, want: "malformed JSON at offset 2: invalid character '\\'' looking for beginning of object key string"},
		{name: "trailing garbage", body: valid + ` x`, want: "malformed JSON at offset 234: invalid character 'x' after top-level value"},
		{name: "two objects", body: `{"id":"a"} {"id":"b"}`, want: "malformed JSON at offset 12: invalid character '{' after top-level value"},
		{name: "array", body: `[` + valid + `]`, want: "malformed JSON at offset 1: top-level value is an array, want an object"},
		{name: "string", body: ` "P1"`, want: "malformed JSON at offset 2: top-level value is a string, want an object"},
		{name: "null", body: `null`, want: "malformed JSON at offset 1: top-level value is null, want an object"},
		{name: "number", body: `42`, want: "malformed JSON at offset 1: top-level value is a number, want an object"},
		{name: "byte order mark counted", body: "\xef\xbb\xbf{,}", want: "malformed JSON at offset 5: invalid character ',' looking for beginning of object key string"},
		{name: "form encoded", body: `id=P1&role=x`, want: "malformed JSON at offset 1: invalid character 'i' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse(%.200q) = %+v, want error %q", tt.body, b, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%.200q) error = %q, want %q", tt.body, err, tt.want)
			}
			var fe *FieldError
			var se *SyntaxError
			switch {
			case tt.field != "" && !errors.As(err, &fe):
				t.Errorf("Parse(%.200q) error is %T, want *FieldError", tt.body, err)
			case tt.field != "" && fe.Field() != tt.field:
				t.Errorf("Parse(%.200q) error Field = %q, want %q", tt.body, fe.Field(), tt.field)
			case tt.field == "" && !errors.As(err, &se):
				t.Errorf("Parse(%.200q) error is %T, want *SyntaxError", tt.body, err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *Block
	}{
		{
			name: "full block",
			body: valid,
			want: &Block{
				ID: "P8.13.22", Role: "ui_patch", TargetFile: "src/app.py", Description: "rename", Tag: "t1",
				Patch:    Regex{Pattern: "old", Replacement: "new"},
				Metadata: map[string]any{"author": "me", "source": "gpt", "n": json.Number("12345678901234567890")},
			},
		},
		{
			name: "required fields only, empty replacement",
			body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":""}}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "x"}},
		},
		{
			name: "nulls for optional fields",
			body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y","expand":null},"description":null,"metadata":null,"tag":null,"expand":null}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "x", Replacement: "y"}},
		},
		{
			name: "expand inside patch",
			body: with(map[string]any{"patch": map[string]any{"pattern": "(o)ld", "replacement": "${1}x", "expand": true}, "metadata": nil, "description": nil, "tag": nil}),
			want: &Block{ID: "P8.13.22", Role: "ui_patch", TargetFile: "src/app.py", Patch: Regex{Pattern: "(o)ld", Replacement: "${1}x", Expand: true}},
		},
		{
			name: "expand beside patch",
			body: with(map[string]any{"expand": true, "metadata": nil, "description": nil, "tag": nil}),
			want: &Block{ID: "P8.13.22", Role: "ui_patch", TargetFile: "src/app.py", Patch: Regex{Pattern: "old", Replacement: "new", Expand: true}},
		},
		{
			name: "expand inside patch wins",
			body: with(map[string]any{"expand": true, "patch": map[string]any{"pattern": "a", "replacement": "$1x", "expand": false}, "metadata": nil, "description": nil, "tag": nil}),
			want: &Block{ID: "P8.13.22", Role: "ui_patch", TargetFile: "src/app.py", Patch: Regex{Pattern: "a", Replacement: "$1x"}},
		},
		{
			name: "literal dollars without expand",
			body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"price","replacement":"$1 and ${x} and $$"}}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "price", Replacement: "$1 and ${x} and $$"}},
		},
		{
			name: "expand with $$ and names",
			body: `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"(?P<word>a)(b)","replacement":"$$ ${word} $2 $word. $ {x}","expand":true}}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "(?P<word>a)(b)", Replacement: "$$ ${word} $2 $word. $ {x}", Expand: true}},
		},
		{
			name: "unknown fields ignored, last duplicate wins",
			body: `{"id":"x","id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"},"extra":[1,2],"command":"rm -rf /"}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "x", Replacement: "y"}},
		},
		{
			name: "byte order mark",
			body: "\xef\xbb\xbf" + `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"}}`,
			want: &Block{ID: "a", Role: "r", TargetFile: "f", Patch: Regex{Pattern: "x", Replacement: "y"}},
		},
		{
			name: "largest id, role and description",
			body: with(map[string]any{"id": "Z" + strings.Repeat(".", 127), "role": strings.Repeat("é", 128), "description": strings.Repeat("d", MaxDescriptionLen), "metadata": nil, "tag": nil}),
			want: &Block{ID: "Z" + strings.Repeat(".", 127), Role: strings.Repeat("é", 128), TargetFile: "src/app.py", Description: strings.Repeat("d", MaxDescriptionLen), Patch: Regex{Pattern: "old", Replacement: "new"}},
		},
		{
			name: "id characters",
			body: with(map[string]any{"id": "a..b:C-9_z", "metadata": nil, "description": nil, "tag": nil}),
			want: &Block{ID: "a..b:C-9_z", Role: "ui_patch", TargetFile: "src/app.py", Patch: Regex{Pattern: "old", Replacement: "new"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse(%.200q) error = %q, want none", tt.body, err)
			}
			// Every case is a regex block: its one edit is its Patch.
			tt.want.Edits = []Edit{&RegexEdit{TargetFile: tt.want.TargetFile, Regex: tt.want.Patch}}
			tt.want.field = editField{elem: "patch", member: "pattern", target: "target_file"}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%.200q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestSyntaxErrorUnwrap(t *testing.T) {
	_, err := Parse([]byte(`{"id":`))
	var jse *json.SyntaxError
	if !errors.As(err, &jse) {
		t.Errorf("Parse error %v does not wrap a *json.SyntaxError", err)
	}
}

// BenchmarkParse is the webhook's validation of a typical block: the
// benchmark harness's ~450-byte regex patch with description and metadata.
func BenchmarkParse(b *testing.B) {
	body := []byte(`{"id":"p16-0-1234","role":"ui_patch","target_file":"src/app.py",` +
		`"description":"Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place.",` +
		`"patch":{"pattern":"VERSION = \"[^\"]*\"","replacement":"VERSION = \"p16-0-1234\""},` +
		`"metadata":{"author":"gpt","source":"custom-gpt","phase":"P8.13.22","timestamp":"2025-07-29T22:48:00Z","reason":"footer build id"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
