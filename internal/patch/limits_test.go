package patch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// planWithin plans body against files under lim.
func planWithin(t *testing.T, ctx context.Context, body string, files map[string][]byte, lim Limits) ([]Change, error) {
	t.Helper()
	b, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return b.PlanWithin(ctx, func(p string) ([]byte, bool, error) {
		c, ok := files[p]
		return c, ok, nil
	}, nil, lim)
}

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func edits(n int, edit string) string {
	return strings.TrimSuffix(strings.Repeat(edit+",", n), ",")
}

// TestMemoryBombsFailOnTheirLimit: each of these, unbounded, allocates
// from gigabytes to hundreds of terabytes. Within limits each fails with a
// *LimitError naming the limit, having allocated a few times the limit at
// most.
func TestMemoryBombsFailOnTheirLimit(t *testing.T) {
	lim := Limits{MaxFileBytes: 1 << 20, MaxPatchBytes: 4 << 20}
	big := bytes.Repeat([]byte("x"), 400<<10)
	mib := append([]byte("x"), bytes.Repeat([]byte("z"), 1<<20-1)...)
	indented := []byte(strings.Repeat(" ", 1<<20-10) + "anchor\n")
	cases := []struct {
		name  string
		body  string
		files map[string][]byte
		limit string
	}{
		{"36 doubling regex edits", `{"id":"b","role":"r","edits":[` +
			edits(36, `{"target_file":"a.txt","pattern":"(?s)(.*)","replacement":"$1$1","expand":true}`) + `]}`,
			map[string][]byte{"a.txt": bytes.Repeat([]byte("0123456789abcde\n"), 190)}, LimitFile},
		{"literal regex growth", `{"id":"b","role":"r","target_file":"a.txt","patch":{"pattern":"x","replacement":"` + strings.Repeat("y", 1000) + `"}}`,
			map[string][]byte{"a.txt": big}, LimitFile},
		{"literal regex growth on lines", `{"id":"b","role":"r","target_file":"a.txt","patch":{"pattern":"x","replacement":"` + strings.Repeat("y", 1000) + `"}}`,
			map[string][]byte{"a.txt": bytes.Repeat([]byte("x\n"), 200<<10)}, LimitFile},
		{"a group repeated in the replacement", `{"id":"b","role":"r","target_file":"a.txt","patch":{"pattern":"(?s)(.+)","replacement":"` + strings.Repeat("$1", 10000) + `","expand":true}}`,
			map[string][]byte{"a.txt": big}, LimitFile},
		{"a match at every byte", `{"id":"b","role":"r","target_file":"a.txt","patch":{"pattern":"()","replacement":"$1","expand":true}}`,
			map[string][]byte{"a.txt": big}, LimitFile},
		{"every character by 500 KB", `{"id":"b","role":"r","target_file":"a.txt","patch":{"search":"x","replace":"` + strings.Repeat("y", 500<<10) + `","all":true}}`,
			map[string][]byte{"a.txt": big}, LimitFile},
		{"re-indented to a huge indentation", `{"id":"b","role":"r","target_file":"a.txt","patch":{"diff":"@@ -1,1 +1,` + fmt.Sprint(2001) + ` @@\n anchor\n` + strings.Repeat("+x\\n", 2000) + `"}}`,
			map[string][]byte{"a.txt": indented}, LimitFile},
		{"several files", `{"id":"b","role":"r","edits":[` +
			`{"target_file":"1","search":"x","replace":"y"},{"target_file":"2","search":"x","replace":"y"},{"target_file":"3","search":"x","replace":"y"},{"target_file":"4","search":"x","replace":"y"},{"target_file":"5","search":"x","replace":"y"}]}`,
			map[string][]byte{"1": mib, "2": mib, "3": mib, "4": mib, "5": mib}, LimitPatch},
		{"a file too large to read", `{"id":"b","role":"r","target_file":"a.txt","patch":{"search":"x","replace":"y"}}`,
			map[string][]byte{"a.txt": bytes.Repeat([]byte("x"), 1<<20+1)}, LimitFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = planWithin(t, context.Background(), c.body, c.files, lim) })
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != c.limit {
				t.Fatalf("plan = %v, want a *LimitError on the %s limit", err, c.limit)
			}
			if want := "MiB"; !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not give the limit", err)
			}
			// Under the race detector sync.Pool keeps few of the regexp
			// package's machines, which then allocate anew.
			if n > 64<<20 {
				t.Errorf("allocated %s before failing, want a few times the limit at most", FormatBytes(int64(n)))
			}
			t.Logf("%v (allocated %s)", err, FormatBytes(int64(n)))
		})
	}
}

// TestLinesCountedBeforeMade: a file of newlines only, cut into lines for
// a hunk, would take 32 bytes and more a byte; the patch limit refuses it
// before the lines are made.
func TestLinesCountedBeforeMade(t *testing.T) {
	files := map[string][]byte{"a.txt": bytes.Repeat([]byte("\n"), 4<<20)}
	body := `{"id":"b","role":"r","target_file":"a.txt","patch":{"diff":"@@ -1,2 +1,2 @@\n \n-\n+x\n"}}`
	var err error
	n := allocated(func() {
		_, err = planWithin(t, context.Background(), body, files, Limits{MaxFileBytes: 8 << 20, MaxPatchBytes: 16 << 20})
	})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitPatch {
		t.Fatalf("plan = %v, want a *LimitError on the patch limit", err)
	}
	if n > 16<<20 {
		t.Errorf("allocated %s before failing, want less than the limit", FormatBytes(int64(n)))
	}
}

// TestWithinLimits: what fits is planned as without limits.
func TestWithinLimits(t *testing.T) {
	body := `{"id":"b","role":"r","edits":[` + edits(4, `{"target_file":"a.txt","pattern":"(?s)(.*)","replacement":"$1$1","expand":true}`) + `]}`
	files := map[string][]byte{"a.txt": bytes.Repeat([]byte("y"), 1<<16)}
	got, err := planWithin(t, context.Background(), body, files, Limits{MaxFileBytes: 1 << 20, MaxPatchBytes: 1<<20 + 1<<16})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].New) != 1<<20 {
		t.Fatalf("plan = %d changes, want a.txt at 1 MiB", len(got))
	}
	if _, err := planWithin(t, context.Background(), body, files, Limits{MaxFileBytes: 1<<20 - 1}); err == nil {
		t.Fatal("one byte less: want a refusal")
	}
}

// TestPlanStops: a cancelled plan stops between edits and inside long
// replacements, with an error wrapping the cause.
func TestPlanStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := `{"id":"b","role":"r","target_file":"a.txt","patch":{"pattern":"x","replacement":"y"}}`
	if _, err := planWithin(t, ctx, body, map[string][]byte{"a.txt": []byte("x")}, Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("plan after cancel = %v, want context.Canceled", err)
	}

	// Matches all over 16 MiB: the stop is seen within a few thousand of
	// them, or lines. (One search of the regexp package cannot be
	// interrupted: an expanding replacement whose pattern may cross lines
	// finds its matches in one, before it builds the result.)
	content := bytes.Repeat([]byte("ab\n"), 6<<20)
	for _, patch := range []string{`{"pattern":"(?s).","replacement":"z"}`, `{"pattern":"(a)","replacement":"$1$1","expand":true}`, `{"pattern":"a","replacement":"c"}`} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		start := time.Now()
		_, err := planWithin(t, ctx, `{"id":"b","role":"r","target_file":"a.txt","patch":`+patch+`}`, map[string][]byte{"a.txt": content}, Limits{MaxFileBytes: 64 << 20, MaxPatchBytes: 256 << 20})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: plan = %v, want context.DeadlineExceeded", patch, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: stopped after %v, want within a few thousand matches", patch, d)
		}
		t.Logf("%s stopped after %v", patch, time.Since(start))
	}
}

// TestTemplateIsExpand compares the parsed template with regexp.Expand.
func TestTemplateIsExpand(t *testing.T) {
	patterns := []string{`(a)(b)?(?P<n>c)`, `(?P<x>a)|(?P<x>b)`, `()`, `(?P<_1>a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)`}
	templates := []string{"", "$", "$$", "$$1", "$1", "${1}", "$1x", "${1}x", "$10", "$01", "$n", "${n}", "${n", "$x", "${x}y", "$_1", "$0$0", "a$", "$ $", "${}", "$99999999999", "${1}${2}${3}$11", "é$1é", "$\xff"}
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		for _, src := range []string{"abc", "ac", "b", "abcdefghijk", ""} {
			for _, m := range re.FindAllSubmatchIndex([]byte(src), -1) {
				for _, tmpl := range templates {
					want := re.Expand(nil, []byte(tmpl), []byte(src), m)
					tp := compileTemplate(re, tmpl)
					got := tp.expand(nil, []byte(src), m)
					if !bytes.Equal(got, want) || tp.size(m) != int64(len(want)) {
						t.Errorf("pattern %q, template %q on %q at %v: expand = %q (size %d), want %q", p, tmpl, src, m, got, tp.size(m), want)
					}
				}
			}
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 64 << 20: "64 MiB", 3 << 29: "1.5 GiB", 20 << 30: "20 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
