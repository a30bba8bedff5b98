package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// check compares Object, Array and String with encoding/json on one input
// that is valid JSON: each either gives encoding/json's answer or refuses.
func check(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return // callers validate first, or decode values strictly
	}
	trimmed := bytes.TrimSpace(data)

	var wantObj map[string]json.RawMessage
	objErr := json.Unmarshal(data, &wantObj)
	got := map[string]json.RawMessage{}
	ok := Object(data, func(key, value []byte) bool {
		var k string
		if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
			t.Errorf("Object(%q): key %q does not unquote: %v", data, key, err)
			return false
		}
		got[k] = value
		return true
	})
	isObj := objErr == nil && trimmed[0] == '{'
	if ok != isObj {
		t.Errorf("Object(%q) ok = %v, want %v", data, ok, isObj)
	} else if ok && !reflect.DeepEqual(got, wantObj) {
		t.Errorf("Object(%q) = %q, Unmarshal %q", data, got, wantObj)
	}

	var wantArr []json.RawMessage
	arrErr := json.Unmarshal(data, &wantArr)
	arr, ok := Array(data)
	isArr := arrErr == nil && trimmed[0] == '['
	if ok != isArr {
		t.Errorf("Array(%q) ok = %v, want %v", data, ok, isArr)
	} else if ok && len(arr) != len(wantArr) {
		t.Errorf("Array(%q) = %d elements, Unmarshal %d", data, len(arr), len(wantArr))
	} else if ok {
		for i := range arr {
			if !bytes.Equal(arr[i], wantArr[i]) {
				t.Errorf("Array(%q)[%d] = %q, Unmarshal %q", data, i, arr[i], wantArr[i])
			}
		}
	}

	if s, ok := String(trimmed); ok {
		var want string
		if err := json.Unmarshal(trimmed, &want); err != nil || s != want {
			t.Errorf("String(%q) = %q, Unmarshal %q, %v", trimmed, s, want, err)
		}
	}
}

func TestScan(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1,"a":2}`, `{"a" : [1, {"b":"}]"}] , "c":null}`, `[]`, ` [ 1 , "x" , [ ] , { } ] `,
		`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\u20ac"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\udc00"`,
		`"\ud83dx"`, `"\ud83d\u0041"`, "\"\xff\"", "\"é\"", `"\u0000"`, `12`, `-0.5e3`, `true`, `null`,
		`{"k\"ey":{"n":[[["deep"]]]}}`, `{"\u0061":1}`, "{\"\xfe\":1}",
	} {
		check(t, []byte(s))
	}
	// Invalid JSON the structure walk must refuse.
	for _, s := range []string{`{"a":1`, `{"a" 1}`, `{"a":1,}`, `{"a":1}x`, `[1,]`, `[1 2]`, `{"a":}`, `{a:1}`, `["x]`} {
		if Object([]byte(s), func(_, _ []byte) bool { return true }) {
			t.Errorf("Object(%q) walked invalid JSON to the end", s)
		}
		if _, ok := Array([]byte(s)); ok && s[0] == '[' {
			t.Errorf("Array(%q) accepted invalid JSON", s)
		}
	}
	for _, s := range []string{`"a`, `"\x"`, `"\u12"`, "\"a\x01\"", `"a"b"`, `x`} {
		if _, ok := String([]byte(s)); ok {
			t.Errorf("String(%q) accepted an invalid string", s)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"\""}],"a":null}`, `["\ud83d\ude00",-1.5,true]`, `"\u00e9\n"`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
	})
}
