package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/patch"
)

// get answers a GET with the token.
func (f *fixture) get(path string) *httptest.ResponseRecorder {
	hr := httptest.NewRequest("GET", path, nil)
	hr.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	return rec
}

// postTo POSTs a JSON body with the token to path.
func (f *fixture) postTo(path, body string) *httptest.ResponseRecorder {
	hr := httptest.NewRequest("POST", path, strings.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	return rec
}

// checkSize fails unless an answer is under OpenAI's 100,000 characters.
func checkSize(t *testing.T, what string, body []byte) {
	t.Helper()
	if n := utf8.RuneCount(body); n >= api.MaxAnswerChars {
		t.Fatalf("%s: the answer is %d characters, not under %d", what, n, api.MaxAnswerChars)
	}
}

// hostile is text that grows most when encoded as JSON: control characters
// take six characters each, quotes and backslashes two.
func hostile(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString([]string{"\x01", "\"", "\\", "\x1f", "<", "\n"}[i%6])
	}
	return b.String()[:n]
}

// TestLongDiffInParts: GET /patches/{id} of a patch whose diff is far over
// 100,000 characters as JSON (and whose description is the longest
// allowed, of the worst characters) answers under 100,000 characters, says
// in its notes how to fetch the rest, and ?diff_offset= pages through the
// whole diff exactly (issue 12: a GPT action refuses an answer of 100,000
// characters or more).
func TestLongDiffInParts(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 4 << 20 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.worker.Run(ctx)
	content := hostile(150_000)
	body, _ := json.Marshal(map[string]any{
		"id": "big", "role": "r", "target_file": "big.txt",
		"description": hostile(patch.MaxDescriptionLen),
		"patch":       map[string]any{"search": "", "replace": content},
	})
	// A sender that waits for the outcome gets the first part.
	rec := f.postTo("/webhook?wait=30s", string(body))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "diff_offset=") {
		t.Fatalf("submit and wait: %d %.300s", rec.Code, rec.Body)
	}
	checkSize(t, "POST /webhook?wait=30s", rec.Body.Bytes())
	full, err := f.svc.Wait(ctx, "big")
	if err != nil || full.State != api.StateApplied {
		t.Fatalf("wait: %v %+v", err, full.State)
	}
	var got strings.Builder
	offset, parts := 0, 0
	for {
		rec := f.get(fmt.Sprintf("/patches/big?diff_offset=%d", offset))
		if rec.Code != 200 {
			t.Fatalf("part at %d: %d %s", offset, rec.Code, rec.Body)
		}
		checkSize(t, fmt.Sprintf("GET /patches/big?diff_offset=%d", offset), rec.Body.Bytes())
		var p api.PatchView
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.DiffOffset != offset || p.DiffSize != len(full.Diff) {
			t.Fatalf("part at %d: diff_offset %d, diff_size %d of %d", offset, p.DiffOffset, p.DiffSize, len(full.Diff))
		}
		got.WriteString(p.Diff)
		parts++
		if p.DiffNext == 0 {
			break
		}
		if note := strings.Join(p.Notes, "\n"); !strings.Contains(note, fmt.Sprintf("diff_offset=%d", p.DiffNext)) {
			t.Fatalf("part at %d: no note naming diff_offset=%d: %q", offset, p.DiffNext, note)
		}
		offset = p.DiffNext
	}
	if got.String() != full.Diff {
		t.Fatalf("the %d parts make %d bytes, not the diff's %d", parts, got.Len(), len(full.Diff))
	}
	if parts < 3 {
		t.Fatalf("%d parts: the diff was not long enough to test", parts)
	}
	if rec := f.get("/patches/big?diff_offset=-1"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "diff_offset") {
		t.Fatalf("diff_offset=-1: %d %s", rec.Code, rec.Body)
	}
	// A preview of the same size is cut too, saying so.
	body, _ = json.Marshal(map[string]any{"id": "big2", "role": "r", "target_file": "big2.txt",
		"patch": map[string]any{"search": "", "replace": content}})
	rec = f.postTo("/patches/preview", string(body))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "diff cut") {
		t.Fatalf("preview: %d %.300s", rec.Code, rec.Body)
	}
	checkSize(t, "POST /patches/preview", rec.Body.Bytes())
}

// TestListPageSize: the worst page the API allows (limit=1000, patches
// with long descriptions of the worst characters, some of the longest
// allowed) answers under 100,000 characters, and following next_cursor
// lists every patch once.
func TestListPageSize(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 4 << 20 })
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				desc := hostile(300)
				if i%200 == 0 {
					desc = hostile(patch.MaxDescriptionLen)
				}
				body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("p%04d", i), "role": "r", "target_file": "a.txt",
					"description": desc, "patch": map[string]any{"pattern": "a", "replacement": "b"}})
				if _, err := f.svc.Submit(context.Background(), api.SubmitRequest{Body: body}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		rec := f.get("/patches?limit=1000&cursor=" + cursor)
		if rec.Code != 200 {
			t.Fatalf("list: %d %s", rec.Code, rec.Body)
		}
		checkSize(t, "GET /patches?limit=1000&cursor="+cursor, rec.Body.Bytes())
		var l api.PatchList
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range l.Patches {
			if seen[p.ID] {
				t.Fatalf("%s listed twice", p.ID)
			}
			seen[p.ID] = true
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if len(seen) != n || pages < 2 {
		t.Fatalf("listed %d of %d patches in %d pages", len(seen), n, pages)
	}
}
