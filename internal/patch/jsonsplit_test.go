package patch

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"regexp"
	"regexp/syntax"
	"testing"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/jsonscan"
)

// checkSplit compares splitObject with json.Unmarshal on one input.
func checkSplit(t *testing.T, data []byte) {
	t.Helper()
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal(data, &want)
	if !json.Valid(data) {
		return // splitObject is only ever called on valid JSON
	}
	got, ok := splitObject(data)
	if wantErr != nil || bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		// A valid value that is not an object (Unmarshal takes null
		// for a nil map; decodeObject never splits it).
		if ok {
			t.Errorf("splitObject(%q) accepted what Unmarshal refuses: %v", data, wantErr)
		}
		return
	}
	if !ok {
		t.Errorf("splitObject(%q) refused a valid object", data)
		return
	}
	if len(got) != len(want) {
		t.Errorf("splitObject(%q) = %d members, Unmarshal %d", data, len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !bytes.Equal(g, w) {
			t.Errorf("splitObject(%q)[%q] = %q (present %v), Unmarshal %q", data, k, g, ok, w)
		}
	}
}

func TestSplitObject(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, "\t{\n}\r\n", `{"a":1}`, `{"a" : "x" , "b":[1,{"c":"}"}],"d":null}`,
		`{"a":1,"a":2}`, `{"a":{"a":{"a":[]}},"b":true,"c":false}`, `{"":""}`,
		`{"k\"ey":"v\\"}`, `{"\u0070atch":"escaped key"}`, `{"p":"\u00e9\ud83d\ude00"}`,
		"{\"bad\xffkey\":1}", "{\"k\":\"bad\xffvalue\"}", `{"n":-1.5e+10,"m":0}`,
		`{"s":"a}b]c{d[e,f:g"}`, `{"x":"\\"}`, `{"x":"\\\""}`, `[]`, `"str"`, `12`, `null`,
		`{"a":[[[[]]]],"b":{"c":{"d":{}}}}`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`,
	} {
		checkSplit(t, []byte(s))
	}
	// Random objects built from pieces, most of them valid.
	r := rand.New(rand.NewPCG(3, 4))
	keys := []string{`"a"`, `"b"`, `"a"`, `"\u0061"`, `"k\\"`, `""`, `"é"`, "\"\xfe\""}
	vals := []string{`1`, `-0.5`, `"s"`, `"q\"u"`, `true`, `null`, `[]`, `{}`, `[1,"]",{"x":"}"}]`, `{"n":{"m":[null]}}`, `"\\"`}
	sp := []string{"", " ", "\n", "\t "}
	for range 5000 {
		var b bytes.Buffer
		b.WriteString(sp[r.IntN(len(sp))] + "{")
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteString(sp[r.IntN(len(sp))] + ",")
			}
			b.WriteString(sp[r.IntN(len(sp))] + keys[r.IntN(len(keys))] + sp[r.IntN(len(sp))] + ":" + sp[r.IntN(len(sp))] + vals[r.IntN(len(vals))])
		}
		b.WriteString(sp[r.IntN(len(sp))] + "}" + sp[r.IntN(len(sp))])
		checkSplit(t, b.Bytes())
	}
}

func FuzzSplitObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":[2]}`, `{"\u0070":"x\"}"}`, "{\"\xff\":{}}", `{"a":{"b":"]"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplit(t, data)
	})
}

// checkFlat compares flatObject with a json.Decoder using UseNumber, as
// objectField decoded every object before it, on one valid object.
func checkFlat(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) || bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return // objectField is only ever given a valid object
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want map[string]any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("Decode(%q): %v", data, err)
	}
	got, ok := flatObject(data)
	if !ok {
		nested := false
		jsonscan.Object(data, func(_, v []byte) bool {
			nested = nested || v[0] == '{' || v[0] == '['
			return true
		})
		if nested {
			return // a nested member (even one a later one replaces): the decoder's to do
		}
		if bytes.Contains(data, []byte("\\u")) || !utf8.Valid(data) {
			return // a string encoding/json repairs: the decoder's to do
		}
		t.Errorf("flatObject(%q) refused a flat object", data)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flatObject(%q) = %#v, the decoder %#v", data, got, want)
	}
}

func TestFlatObject(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, `{"author":"gpt","source":"custom-gpt","phase":"P8.13.22","timestamp":"2025-07-29T22:48:00Z"}`,
		`{"a":1,"a":"2"}`, `{"n":-1.5e+10,"m":0,"b":true,"c":false,"z":null}`, `{"k\"ey":"v\\","\u0070":"é\ud83d\ude00"}`,
		"{\"bad\xffkey\":1}", "{\"k\":\"bad\xffvalue\"}", `{"lone":"\ud800"}`, `{"x":"a\nb\t\"c\"\/"}`,
		`{"nested":{"a":1}}`, `{"list":[1,2]}`, `{"a":"x","b":{"c":[]}}`, `{"n":1E400}`,
	} {
		checkFlat(t, []byte(s))
	}
	if m, ok := flatObject([]byte(`{"a":{"b":1}}`)); ok {
		t.Errorf("flatObject of a nested object = %v, want it refused", m)
	}
	r := rand.New(rand.NewPCG(5, 6))
	keys := []string{`"a"`, `"b"`, `"a"`, `"\u0061"`, `"k\\"`, `""`, `"é"`, "\"\xfe\""}
	vals := []string{`1`, `-0.5`, `"s"`, `"q\"u"`, `true`, `false`, `null`, `[]`, `{}`, `"\\"`, `"\u00e9"`, "\"\xff\"", `"\udc00"`, `12e-3`}
	for range 5000 {
		var b bytes.Buffer
		b.WriteString("{")
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(keys[r.IntN(len(keys))] + ":" + vals[r.IntN(len(vals))])
		}
		b.WriteString("}")
		checkFlat(t, b.Bytes())
	}
}

func FuzzFlatObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":"x"}`, `{"\u0070":"x\"}"}`, "{\"\xff\":true}", `{"a":null,"b":-0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFlat(t, data)
	})
}

// TestParsedGroups: the groups the webhook counts from the parsed pattern
// are those regexp.Compile counts, so a replacement is judged the same.
func TestParsedGroups(t *testing.T) {
	for _, p := range []string{`a`, `(a)(b)`, `(?P<x>a)(b)(?P<y>c)`, `(?:a)(b)`, `((a)|(?P<z>b))*`, `(a){0}`, `(a){2}(?P<w>b)+`, `(?i)(?P<x>é)`} {
		re := regexp.MustCompile(p)
		parsed, err := syntax.Parse(p, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		g := parsedGroups{parsed.MaxCap(), parsed.CapNames()}
		if g.NumSubexp() != re.NumSubexp() {
			t.Errorf("%q: %d groups, regexp counts %d", p, g.NumSubexp(), re.NumSubexp())
		}
		for _, name := range append(re.SubexpNames(), "", "nope", "x", "1") {
			if g.SubexpIndex(name) != re.SubexpIndex(name) {
				t.Errorf("%q: SubexpIndex(%q) = %d, regexp says %d", p, name, g.SubexpIndex(name), re.SubexpIndex(name))
			}
		}
	}
	// An invalid pattern is refused with regexp.Compile's own words.
	for _, p := range []string{`(`, `a{2,1}`, `x{1001}`, `[z-a]`, `\8`, `(?P<>a)`} {
		_, cerr := regexp.Compile(p)
		_, err := Parse([]byte(`{"id":"R","role":"r","target_file":"f","description":"d","patch":{"pattern":` + jsonString(p) + `,"replacement":"x"}}`))
		if cerr == nil || err == nil || !bytes.Contains([]byte(err.Error()), []byte(cerr.Error())) {
			t.Errorf("pattern %q: Parse error %v, want it to carry regexp's %v", p, err, cerr)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// BenchmarkParseBlock is the webhook's parse of a typical block: a regex
// edit (escaped quotes in its pattern) and five metadata strings.
func BenchmarkParseBlock(b *testing.B) {
	body := []byte(`{"id":"P8.13.22-7","role":"ui_patch","target_file":"src/app.py","description":"Show the build id in the page footer so that testers can tell which build they are looking at; keeps the version string in one place.","patch":{"pattern":"VERSION = \"[^\"]*\"","replacement":"VERSION = \"P8.13.22-7\""},"metadata":{"author":"gpt","source":"custom-gpt","phase":"P8.13.22","timestamp":"2025-07-29T22:48:00Z","reason":"footer build id"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}
