package patchsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/checkspec"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
	"github.com/patchd/patchd/internal/workspace"
)

// fixture is a Service over a real store, workspace and worker in a
// temporary directory. The worker runs only once run is called.
type fixture struct {
	t      *testing.T
	dir    string
	ws     string
	st     *store.Store
	wk     *worker.Worker
	svc    *Service
	checks []checkspec.Check
}

func newFixture(t *testing.T, checks ...checkspec.Check) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, dir: dir, ws: filepath.Join(dir, "ws"), checks: checks}
	os.MkdirAll(filepath.Join(f.ws, "src"), 0o755)
	os.WriteFile(filepath.Join(f.ws, "src", "app.py"), []byte("a = 1\nb = 2\nb = 2\n"), 0o644)
	stateDir := filepath.Join(f.ws, ".patchd")
	ws, err := workspace.OpenProtected(f.ws, []workspace.Protected{{Path: stateDir, What: "patchd's state directory"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	st, err := store.Open(filepath.Join(dir, "queue"), store.Options{EventsPath: filepath.Join(dir, "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.wk = worker.New(worker.Options{Store: st, Workspace: ws, SummariesDir: filepath.Join(dir, "summaries"), Checks: checks})
	f.svc = New(Options{Store: st, Workspace: ws, Worker: f.wk, MaxEditsSetting: "max-edits", SummariesDir: filepath.Join(dir, "summaries"),
		Private: []Private{{Path: stateDir, Name: "<state dir>"}}})
	return f
}

// run starts the worker until the test ends.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.wk.Run(ctx)
		close(done)
	}()
	f.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func block(id, search, replace string) string {
	return fmt.Sprintf(`{"id":%q,"role":"r","target_file":"src/app.py","patch":{"search":%q,"replace":%q}}`, id, search, replace)
}

func (f *fixture) submit(body string) (api.SubmitResult, error) {
	return f.svc.Submit(context.Background(), api.SubmitRequest{Body: []byte(body)})
}

// wantError checks that err is an *api.Error with this kind, code and
// field, whose message holds want.
func wantError(t *testing.T, what string, err error, kind api.Kind, code, field, want string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %v (%T), want an *api.Error", what, err, err)
	}
	if e.Kind != kind || e.Code != code || e.Field != field || !strings.Contains(e.Message, want) {
		t.Errorf("%s = {Kind %s, Code %s, Field %q, Message %q}, want {%s, %s, %q, containing %q}",
			what, e.Kind, e.Code, e.Field, e.Message, kind, code, field, want)
	}
}

// TestSubmit: a block is stored once; a resend is a duplicate; every
// refusal at intake is invalid with its code and field and today's
// message, and stores nothing.
func TestSubmit(t *testing.T) {
	f := newFixture(t)
	res, err := f.submit(block("P1", "a = 1", "a = 3"))
	if err != nil || res != (api.SubmitResult{PatchID: "P1", State: "queued"}) {
		t.Fatalf("Submit = %+v, %v, want P1 queued", res, err)
	}
	res, err = f.submit(block("P1", "a = 1", "a = 3"))
	if err != nil || !res.Duplicate || res.State != "queued" {
		t.Errorf("Submit again = %+v, %v, want a duplicate", res, err)
	}
	_, err = f.submit(block("P1", "a = 1", "a = 4"))
	wantError(t, "Submit of another body", err, api.KindConflict, api.CodeIDConflict, "id",
		`patch id "P1" was already used for a different body (state queued); use a new id`)

	tests := []struct {
		name, body        string
		code, field, want string
	}{
		{"malformed", `{"id":`, api.CodeMalformedJSON, "", "malformed JSON"},
		{"missing role", `{"id":"x"}`, api.CodeFieldMissing, "role", "Missing required field: role"},
		{"bad regex", `{"id":"x","role":"r","target_file":"a","patch":{"pattern":"(","replacement":""}}`, api.CodeFieldInvalid, "patch.pattern", "Invalid field: patch.pattern"},
		{"absolute", `{"id":"x","role":"r","target_file":"/etc/passwd","patch":{"pattern":"a","replacement":""}}`, api.CodePathOutside, "target_file", `Invalid field: target_file: path "/etc/passwd": is absolute`},
		{"dotdot", `{"id":"x","role":"r","target_file":"../x","patch":{"pattern":"a","replacement":""}}`, api.CodePathOutside, "target_file", "escapes the workspace"},
		{"git", `{"id":"x","role":"r","target_file":".git/config","patch":{"pattern":"a","replacement":""}}`, api.CodePathGit, "target_file", "git internals"},
		{"state dir", `{"id":"x","role":"r","target_file":".patchd/token","patch":{"pattern":"a","replacement":""}}`, api.CodePathProtected, "target_file", "patchd's state directory"},
		{"edit path", `{"id":"x","role":"r","edits":[{"target_file":"../y","search":"a","replace":"b"}]}`, api.CodePathOutside, "path", "Invalid field: path:"},
	}
	for _, tt := range tests {
		_, err := f.submit(tt.body)
		wantError(t, tt.name, err, api.KindInvalid, tt.code, tt.field, tt.want)
	}
	if st := f.st.Stats(); st.Total != 1 {
		t.Errorf("store holds %d patches, want 1", st.Total)
	}
}

// TestSubmitStoreClosed: a store that cannot take the patch is
// unavailable, not internal.
func TestSubmitStoreClosed(t *testing.T) {
	f := newFixture(t)
	f.st.Close()
	_, err := f.submit(block("late", "a", "b"))
	wantError(t, "Submit to a closed store", err, api.KindUnavailable, api.CodeStoreClosed, "", "store closed")
}

// TestPreview: the diff, or why the patch would fail (unprocessable, with
// the match's code); nothing stored or written.
func TestPreview(t *testing.T) {
	f := newFixture(t)
	preview := func(body string) (api.PreviewResult, error) {
		return f.svc.Preview(context.Background(), api.PreviewRequest{Body: []byte(body)})
	}
	res, err := preview(block("V1", "a = 1", "a = 3"))
	if err != nil || res.PatchID != "V1" || !slices.Equal(res.Files, []string{"src/app.py"}) || !strings.Contains(res.Diff, "+a = 3") {
		t.Errorf("Preview = %+v, %v, want the diff", res, err)
	}
	_, err = preview(block("V2", "c = 1", "c = 3"))
	wantError(t, "Preview of a search not found", err, api.KindUnprocessable, api.CodeMatchNotFound, "patch.search", "not found in src/app.py")
	_, err = preview(block("V3", "b = 2", "b = 3"))
	wantError(t, "Preview of an ambiguous search", err, api.KindUnprocessable, api.CodeMatchAmbiguous, "patch.search", "matches 2 places")
	_, err = preview(`{"id":"V4"}`)
	wantError(t, "Preview of an invalid block", err, api.KindInvalid, api.CodeFieldMissing, "role", "Missing required field: role")
	if st := f.st.Stats(); st.Total != 0 {
		t.Errorf("preview stored %d patches", st.Total)
	}
	if data, _ := os.ReadFile(filepath.Join(f.ws, "src", "app.py")); string(data) != "a = 1\nb = 2\nb = 2\n" {
		t.Errorf("preview wrote the file: %q", data)
	}
}

// TestGetList: a page of patches, newest first, with a cursor; an unknown
// id is not_found naming it; bad options are invalid naming the field.
func TestGetList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"p1", "p2", "p3"} {
		if _, err := f.submit(block(id, "a = 1", "a = "+id)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := f.svc.List(ctx, api.ListOptions{Limit: 2})
	if err != nil || len(l.Patches) != 2 || l.Patches[0].ID != "p3" || l.NextCursor == "" || l.Patches[0].Diff != "" {
		t.Fatalf("List(2) = %+v, %v, want p3, p2 and a cursor", l, err)
	}
	l, err = f.svc.List(ctx, api.ListOptions{Limit: 2, Cursor: l.NextCursor, State: "queued"})
	if err != nil || len(l.Patches) != 1 || l.Patches[0].ID != "p1" || l.NextCursor != "" {
		t.Errorf("second page = %+v, %v, want p1 alone", l, err)
	}
	_, err = f.svc.List(ctx, api.ListOptions{Limit: 1001})
	wantError(t, "List(1001)", err, api.KindInvalid, api.CodeFieldInvalid, "limit", `limit must be a number from 1 to 1000, not "1001"`)
	_, err = f.svc.List(ctx, api.ListOptions{State: "done"})
	wantError(t, "List(state done)", err, api.KindInvalid, api.CodeFieldInvalid, "state", `state must be one of queued, applying, applied, failed, reverted, not "done"`)
	if p, err := f.svc.Get(ctx, "p2"); err != nil || p.State != "queued" || p.TargetFile != "src/app.py" {
		t.Errorf("Get(p2) = %+v, %v", p, err)
	}
	_, err = f.svc.Get(ctx, "nope")
	wantError(t, "Get(nope)", err, api.KindNotFound, api.CodePatchNotFound, "id", `no patch with id "nope"`)
}

// TestStatus counts the patches and says where the events stand.
func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.submit(block("s1", "a = 1", "a = 2"))
	// The store numbers a batch's events just after it answers the batch's
	// submitters (the answer does not wait for the event log): poll.
	var st api.Status
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, err = f.svc.Status(context.Background()); err != nil || st.LastEventID >= 1 {
			break
		}
	}
	if err != nil || st.Queue.Queued != 1 || st.Queue.Total != 1 || st.LastEventID != 1 || st.Queue.JournalBytes == 0 {
		t.Errorf("Status = %+v, %v, want one queued patch after event 1", st, err)
	}
}

// TestDrop: a queued patch fails; any other is a conflict naming its
// state; an unknown id is not_found.
func TestDrop(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.submit(block("d1", "a = 1", "a = 2"))
	p, err := f.svc.Drop(ctx, "d1")
	if err != nil || p.State != "failed" || p.Error != store.DroppedError {
		t.Fatalf("Drop(d1) = %+v, %v, want failed", p, err)
	}
	_, err = f.svc.Drop(ctx, "d1")
	wantError(t, "Drop again", err, api.KindConflict, api.CodeNotQueued, "", `cannot drop "d1": only a queued patch can be dropped, and it is failed`)
	_, err = f.svc.Drop(ctx, "nope")
	wantError(t, "Drop(nope)", err, api.KindNotFound, api.CodePatchNotFound, "id", `no patch with id "nope"`)
}

// TestRevertAndWait: Wait returns the applied patch with its diff; Revert
// restores the file; a second revert is a conflict; a changed file is
// one too; an unknown id is not_found.
func TestRevertAndWait(t *testing.T) {
	f := newFixture(t)
	f.run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.submit(block("r1", "a = 1", "a = 2"))
	p, err := f.svc.Wait(ctx, "r1")
	if err != nil || p.State != "applied" || !strings.Contains(p.Diff, "+a = 2") || len(p.Files) != 1 {
		t.Fatalf("Wait(r1) = %+v, %v, want applied with its diff", p, err)
	}
	p, err = f.svc.Revert(ctx, "r1")
	if err != nil || p.State != "reverted" {
		t.Fatalf("Revert(r1) = %+v, %v, want reverted", p, err)
	}
	if p, err := f.svc.Wait(ctx, "r1"); err != nil || p.State != "reverted" {
		t.Errorf("Wait of a reverted patch = %+v, %v, want it at once", p, err)
	}
	_, err = f.svc.Revert(ctx, "r1")
	wantError(t, "Revert again", err, api.KindConflict, api.CodeNotApplied, "", `cannot revert "r1": patch is not applied (it is reverted)`)
	_, err = f.svc.Revert(ctx, "nope")
	wantError(t, "Revert(nope)", err, api.KindNotFound, api.CodePatchNotFound, "id", `no patch with id "nope"`)

	f.submit(block("r2", "a = 1", "a = 5"))
	if p, err := f.svc.Wait(ctx, "r2"); err != nil || p.State != "applied" {
		t.Fatalf("Wait(r2) = %+v, %v", p, err)
	}
	os.WriteFile(filepath.Join(f.ws, "src", "app.py"), []byte("changed\n"), 0o644)
	_, err = f.svc.Revert(ctx, "r2")
	wantError(t, "Revert of a changed file", err, api.KindConflict, api.CodeFileChanged, "", `cannot revert "r2": file changed since the patch was applied: src/app.py`)

	f.submit(block("r3", "nothing like it", "x"))
	p, err = f.svc.Wait(ctx, "r3")
	if err != nil || p.State != "failed" || !strings.Contains(p.Error, "not found") {
		t.Errorf("Wait(r3) = %+v, %v, want failed", p, err)
	}
}

// TestWaitTimesOut: a patch nobody applies is returned as it stands, with
// the context's error.
func TestWaitTimesOut(t *testing.T) {
	f := newFixture(t)
	f.submit(block("w1", "a = 1", "a = 2"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p, err := f.svc.Wait(ctx, "w1")
	if !errors.Is(err, context.DeadlineExceeded) || p.State != "queued" || p.ID != "w1" {
		t.Errorf("Wait = %+v, %v, want queued and the deadline", p, err)
	}
	_, err = f.svc.Wait(context.Background(), "nope")
	wantError(t, "Wait(nope)", err, api.KindNotFound, api.CodePatchNotFound, "id", `no patch with id "nope"`)
}

// TestRevertBusy: a revert waits for a worker busy with a patch only as
// long as its context; then it is unavailable, worker_busy, and nothing
// was reverted.
func TestRevertBusy(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	f := newFixture(t, checkspec.Check{Name: "gate", Timeout: time.Minute,
		Command: []string{"sh", "-c", "while [ -e '" + gate + "' ]; do sleep 0.02; done"}})
	f.run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.submit(block("b1", "a = 1", "a = 2"))
	if p, err := f.svc.Wait(ctx, "b1"); err != nil || p.State != "applied" {
		t.Fatalf("Wait(b1) = %+v, %v", p, err)
	}
	os.WriteFile(gate, nil, 0o644)
	defer os.Remove(gate)
	f.submit(block("b2", "a = 2", "a = 3"))
	sub, err := f.svc.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for e := range sub.Events() {
		if e.ID == "b2" && e.State == "applying" {
			break
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	_, err = f.svc.Revert(short, "b1")
	wantError(t, "Revert while busy", err, api.KindUnavailable, api.CodeWorkerBusy, "", `cannot revert "b1" now: the worker is busy applying patch b2`)
	if p, _ := f.svc.Get(ctx, "b1"); p.State != "applied" {
		t.Errorf("b1 is %s after a refused revert, want applied", p.State)
	}
}

// TestSubscribe: events in order from the start, as api.Events; a start
// after the last event is gone; the end of the context ends the stream.
func TestSubscribe(t *testing.T) {
	f, ctx, cancel := droppedFixture(t)
	sub, err := f.svc.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := firstTwo(sub, cancel, func(e api.Event) string {
		return fmt.Sprintf("%d %s %s %s", e.EventID, e.Event, e.ID, e.State)
	})
	want := []string{"1 patch.submitted e1 queued", "2 patch.dropped e1 failed"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if err := sub.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after cancel = %v, want context.Canceled", err)
	}
	_, err = f.svc.Subscribe(context.Background(), 9)
	wantError(t, "Subscribe(9)", err, api.KindGone, api.CodeEventsLost, "", "event 9 is after the last one, 2")
}

// TestSubscribeOnly: the service leaves out the events not named, those
// already committed and those to come, and keeps their numbers; a
// subscriber that asks is given it through api.EventFilter.
func TestSubscribeOnly(t *testing.T) {
	f, ctx, cancel := droppedFixture(t)
	var svc api.Service = f.svc
	ef, ok := svc.(api.EventFilter)
	if !ok {
		t.Fatal("the service is not an api.EventFilter")
	}
	sub, err := ef.SubscribeOnly(ctx, 0, "patch.dropped")
	if err != nil {
		t.Fatal(err)
	}
	f.submit(block("e2", "a = 1", "a = 2"))
	f.svc.Drop(context.Background(), "e2")
	got := firstTwo(sub, cancel, func(e api.Event) string {
		return fmt.Sprintf("%d %s %s", e.EventID, e.Event, e.ID)
	})
	want := []string{"2 patch.dropped e1", "4 patch.dropped e2"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// droppedFixture is a service whose patch e1 was submitted and dropped
// (events 1 and 2), and a context for a subscription, with its cancel
// (also called at the test's end).
func droppedFixture(t *testing.T) (*fixture, context.Context, context.CancelFunc) {
	f := newFixture(t)
	f.submit(block("e1", "a = 1", "a = 2"))
	f.svc.Drop(context.Background(), "e1")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return f, ctx, cancel
}

// firstTwo reads sub's events, each as line makes it, until there are
// two, then cancels the subscription's context and reads to the end.
func firstTwo(sub api.Subscription, cancel context.CancelFunc, line func(api.Event) string) []string {
	var got []string
	for e := range sub.Events() {
		got = append(got, line(e))
		if len(got) == 2 {
			cancel()
		}
	}
	return got
}

// TestResubmitAfterFailure: a failed patch sent again with another body is
// a new attempt (accepted, attempt 2) that is applied, and its view keeps
// the failed attempt; the failing body sent again is the duplicate answer.
func TestResubmitAfterFailure(t *testing.T) {
	f := newFixture(t)
	f.run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := block("a1", "nothing like it", "x")
	f.submit(bad)
	first, err := f.svc.Wait(ctx, "a1")
	if err != nil || first.State != "failed" || first.Code != api.CodeMatchNotFound {
		t.Fatalf("Wait(a1) = %+v, %v, want failed, match_not_found", first, err)
	}
	res, err := f.submit(bad)
	if err != nil || res != (api.SubmitResult{PatchID: "a1", State: "failed", Duplicate: true}) {
		t.Errorf("Submit of the failed body again = %+v, %v, want the duplicate, failed", res, err)
	}
	res, err = f.submit(block("a1", "a = 1", "a = 7"))
	if err != nil || res != (api.SubmitResult{PatchID: "a1", State: "queued", Attempt: 2}) {
		t.Fatalf("Submit of another body = %+v, %v, want attempt 2 queued", res, err)
	}
	p, err := f.svc.Wait(ctx, "a1")
	if err != nil || p.State != "applied" || !strings.Contains(p.Diff, "+a = 7") || p.Attempt != 2 {
		t.Fatalf("Wait(a1) = %+v, %v, want attempt 2 applied", p, err)
	}
	if len(p.Attempts) != 1 {
		t.Fatalf("Attempts = %+v, want the failed one", p.Attempts)
	}
	a := p.Attempts[0]
	if a.Attempt != 1 || a.Code != api.CodeMatchNotFound || a.Error != first.Error || !a.FinishedAt.Equal(first.FinishedAt) || len(a.Hash) != 64 {
		t.Errorf("Attempts[0] = %+v, want attempt 1 with the failure %q", a, first.Error)
	}
	_, err = f.submit(block("a1", "a = 7", "a = 8"))
	wantError(t, "Submit of another body once applied", err, api.KindConflict, api.CodeIDConflict, "id",
		`patch id "a1" was already used for a different body (state applied); use a new id`)
	if l, _ := f.svc.List(ctx, api.ListOptions{}); len(l.Patches) != 1 || l.Patches[0].Attempt != 2 || len(l.Patches[0].Attempts) != 1 {
		t.Errorf("List = %+v, want a1 with its attempts", l.Patches)
	}
}
