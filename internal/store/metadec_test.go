package store

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkMetaDecode compares decodeMetaFast with json.Unmarshal on one input:
// when the fast path answers, Unmarshal must succeed with the same value.
// It reports whether the fast path answered.
func checkMetaDecode(t *testing.T, meta []byte) bool {
	t.Helper()
	got, diff, ok := decodeMetaFast(meta)
	if !ok {
		return false
	}
	if got.Diff != "" {
		// setDiff keeps only this place of the diff, and reads it back.
		var back string
		if diff.end <= diff.start || json.Unmarshal(meta[diff.start:diff.end], &back) != nil || back != got.Diff {
			t.Errorf("decodeMetaFast(%q): diff at %+v is %q, want the diff %q", meta, diff, meta[max(0, diff.start):max(0, diff.end)], got.Diff)
		}
	}
	var want diskPatch
	if err := json.Unmarshal(meta, &want); err != nil {
		t.Errorf("decodeMetaFast(%q) answered what Unmarshal refuses: %v", meta, err)
		return true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodeMetaFast(%q) =\n%+v\nUnmarshal:\n%+v", meta, got, want)
	}
	return true
}

// randText draws strings with what records hold: code, quotes,
// backslashes, control characters, non-ASCII, emoji, invalid UTF-8.
func randText(r *rand.Rand) string {
	pieces := []string{"a", "func x() {", "\n", "\t", `"`, `\`, "/", "\x00", "\x1f", "é", "€", "😀", "\u2028", "<>&", "\xff", "\xed\xa0\x80", "  ", "+ line\n", "-old\r\n"}
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func randPatch(r *rand.Rand) (Patch, []diskBlob) {
	p := Patch{
		ID: "p-" + randText(r), Hash: strings.Repeat("ab", 32), Role: randText(r), Target: randText(r),
		Description: randText(r), State: States()[r.IntN(5)], Error: randText(r), Diff: randText(r),
	}
	for range r.IntN(3) {
		p.Files = append(p.Files, FileChange{Path: randText(r), OldHash: randText(r), NewHash: randText(r),
			OldMode: uint32(r.IntN(1 << 12)), Existed: r.IntN(2) == 0, Deleted: r.IntN(2) == 0})
	}
	for range r.IntN(3) {
		p.Notes = append(p.Notes, randText(r))
	}
	at := func() time.Time {
		if r.IntN(3) == 0 {
			return time.Time{}
		}
		return time.Unix(0, r.Int64N(1<<62))
	}
	p.ReceivedAt, p.StartedAt, p.FinishedAt, p.RevertedAt = at(), at(), at(), at()
	for i := range r.IntN(3) {
		p.Attempts = append(p.Attempts, Attempt{Number: i + 1, Hash: randText(r), Error: randText(r), Code: randText(r),
			ReceivedAt: at(), FinishedAt: at()})
	}
	var blobs []diskBlob
	for i := range r.IntN(3) {
		blobs = append(blobs, diskBlob{Name: randText(r) + string(rune('a'+i)), Len: r.Int64N(1 << 20)})
	}
	return p, blobs
}

// TestDecodeMetaFast: for the records encodeMeta writes, the fast decoder
// answers (nearly always) and agrees with Unmarshal; for hand-made JSON
// it either agrees or leaves it to Unmarshal.
func TestDecodeMetaFast(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	answered := 0
	const n = 3000
	for range n {
		p, blobs := randPatch(r)
		meta, err := encodeMeta(p, blobs)
		if err != nil {
			t.Fatal(err)
		}
		if checkMetaDecode(t, meta) {
			answered++
		}
	}
	if answered < n*9/10 {
		t.Errorf("the fast decoder answered %d of %d records encodeMeta wrote, want nearly all", answered, n)
	}
	for _, s := range []string{
		`{}`, `{"id":"x","s":"queued"}`, `{"id":null,"f":null,"n":[null,"a"]}`, ` {"id" : "x" , "ra" : 12 } `,
		`{"id":"x","id":"y"}`, `{"ID":"x"}`, `{"id":"x","zz":1}`, `{"id":1}`, `{"ra":1.5}`, `{"ra":1e3}`, `{"ra":-0}`, `{"ra":+0}`, `{"ra":+12}`, `{"ra":-}`, `{"ra":-01}`, `{"ra":--1}`, `{"at":[{"fa":+0}]}`, `{"f":[{"p":"a","om":+420}]}`,
		`{"ra":01}`, `{"ra":9223372036854775808}`, `{"f":[{"p":"a","om":4294967296}]}`, `{"f":[{"p":"a","om":-1}]}`,
		`{"f":[{"p":"a","ex":1}]}`, `{"f":{}}`, `{"at":[{"n":2,"h":"x","e":"y","c":"z","ra":1,"fa":2},null]}`, `{"at":[{"n":"2"}]}`, `{"at":[{"p":"a"}]}`, `{"ib":[{"n":"a","l":3},{"n":"b"}]}`, `{"d":"\u00e9\ud83d\ude00"}`,
		`{"d":"\ud83d"}`, `{"d":"\ud83dx"}`, `{"d":"\udc00\ud83d"}`, `{"d":"\uDBFF\uDFFF"}`, "{\"d\":\"a\x01\"}",
		"{\"d\":\"\xff\"}", `{"d":"\x"}`, `{"d":"\u12"}`, `{"d":"a\/b\\\"c\b\f\n\r\t"}`, `{"id":"x",}`, `{"id":"x"`,
		`{"id":"x"} x`, `[]`, `{"n":["a",]}`, `{"n":[1]}`, `{"id" "x"}`, `{"f":[{"p":"a"}{"p":"b"}]}`, `{"s":tru}`,
	} {
		checkMetaDecode(t, []byte(s))
	}
}

func FuzzDecodeMeta(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		p, blobs := randPatch(r)
		meta, _ := encodeMeta(p, blobs)
		f.Add(meta)
	}
	f.Add([]byte(`{"d":"\ud83d\ude00","f":[{"p":"a","om":420,"ex":true}],"n":null}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		checkMetaDecode(t, meta)
	})
}

func BenchmarkDecodeMeta(b *testing.B) {
	p := Patch{ID: "patch-0001", Hash: strings.Repeat("ab", 32), Role: "refactor", Target: "src/app.py",
		Description: "Make the handler return early when the value is missing", State: StateApplied,
		Diff:       strings.Repeat("+ some changed line of code here\n", 12),
		Files:      []FileChange{{Path: "src/app.py", OldHash: strings.Repeat("a", 64), NewHash: strings.Repeat("b", 64), OldMode: 0o644, Existed: true}},
		ReceivedAt: time.Now(), StartedAt: time.Now(), FinishedAt: time.Now()}
	meta, _ := encodeMeta(p, nil)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, _, ok := decodeMetaFast(meta); !ok {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		for b.Loop() {
			var d diskPatch
			if err := json.Unmarshal(meta, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
