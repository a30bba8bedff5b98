package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// busyReverts is the fixture's service with a worker that stays busy: a
// revert waits for its context, then is refused as the service refuses a
// revert behind a busy worker. It tests the adapter: the wait a request
// asks for, and the status and header of that Kind.
type busyReverts struct {
	api.Service
	gotWait time.Duration
}

func (b *busyReverts) Revert(ctx context.Context, id string) (api.PatchView, error) {
	dl, _ := ctx.Deadline()
	b.gotWait = time.Until(dl)
	<-ctx.Done()
	return api.PatchView{}, api.Errorf(api.KindUnavailable, api.CodeWorkerBusy, "", "cannot revert %q now: the worker is busy applying patch S1", id)
}

// TestRevertWait: the revert endpoint waits for the worker as long as the
// request's wait (default and at most 20s) and answers 503 with
// Retry-After when the worker stays busy; a bad wait is a 400 naming it;
// an unknown id is a 404 whatever the wait.
func TestRevertWait(t *testing.T) {
	busy := &busyReverts{}
	f := newFixture(t, func(o *Options) {
		busy.Service = o.Service
		o.Service = busy
	})
	f.post(req{body: block("R1")})
	tests := []struct {
		id, query string
		code      int
		wantWait  time.Duration
		want      string
		errCode   string
	}{
		{"R1", "?wait=50ms", http.StatusServiceUnavailable, 50 * time.Millisecond, "busy applying patch S1", "worker_busy"},
		{"R1", "?wait=1m", http.StatusBadRequest, 0, "wait must be a duration above 0 and at most 20s", "field_invalid"},
		{"R1", "?wait=soon", http.StatusBadRequest, 0, "soon", "field_invalid"},
		{"nope", "?wait=soon", http.StatusNotFound, 0, `no patch with id "nope"`, "patch_not_found"},
	}
	for _, tt := range tests {
		busy.gotWait = 0
		path := "/patches/" + tt.id + "/revert" + tt.query
		hr := httptest.NewRequest("POST", path, nil)
		hr.Header.Set("Authorization", "Bearer "+testToken)
		hr.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, hr)
		if a := decode(t, rec); rec.Code != tt.code || !strings.Contains(a.Result.Error, tt.want) || a.Result.Code != tt.errCode {
			t.Errorf("POST %s = %d %s, want %d with %q, code %s", path, rec.Code, rec.Body, tt.code, tt.want, tt.errCode)
		}
		if tt.code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("POST %s: 503 without Retry-After", path)
		}
		if busy.gotWait > tt.wantWait {
			t.Errorf("POST %s waited up to %s, want at most %s", path, busy.gotWait, tt.wantWait)
		}
	}
}

// TestRevertThroughService: a revert of a patch that is not applied is a
// 409 with its code, through the real service.
func TestRevertThroughService(t *testing.T) {
	f := newFixture(t, nil)
	f.post(req{body: block("Q1")})
	hr := httptest.NewRequest("POST", "/patches/Q1/revert", nil)
	hr.Header.Set("Authorization", "Bearer "+testToken)
	hr.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	if a := decode(t, rec); rec.Code != http.StatusConflict || a.Result.Code != "not_applied" || a.Result.Error != `cannot revert "Q1": patch is not applied (it is queued)` {
		t.Errorf("revert of a queued patch = %d %s, want 409 not_applied", rec.Code, rec.Body)
	}
	hr = httptest.NewRequest("DELETE", "/patches/Q1", nil)
	hr.Header.Set("Authorization", "Bearer "+testToken)
	rec = httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	if a := decode(t, rec); rec.Code != http.StatusOK || a.Status != "dropped" || a.Result.State != "failed" {
		t.Errorf("drop = %d %s, want 200 dropped", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	f.srv.ServeHTTP(rec, hr)
	if a := decode(t, rec); rec.Code != http.StatusConflict || a.Result.Code != "not_queued" {
		t.Errorf("drop again = %d %s, want 409 not_queued", rec.Code, rec.Body)
	}
}

// TestStatusOfKind: every Kind has its HTTP status, and an error the
// service did not map is a 500.
func TestStatusOfKind(t *testing.T) {
	for kind, want := range map[api.Kind]int{
		api.KindInvalid: 400, api.KindUnauthorized: 401, api.KindForbidden: 403, api.KindNotFound: 404,
		api.KindConflict: 409, api.KindGone: 410, api.KindTooLarge: 413, api.KindUnsupported: 415,
		api.KindUnprocessable: 422, api.KindRateLimited: 429, api.KindInternal: 500, api.KindUnavailable: 503,
	} {
		if got := kind.HTTPStatus(); got != want {
			t.Errorf("%s.HTTPStatus() = %d, want %d", kind, got, want)
		}
	}
}
