package patch

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"testing"
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
