package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/worker"
)

// TestRevertWait: the revert endpoint waits for the worker as long as the
// request's wait (default and at most 20s) and answers 503 with
// Retry-After when the worker stays busy; a bad wait is a 400 naming it.
func TestRevertWait(t *testing.T) {
	var gotWait time.Duration
	f := newFixture(t, func(o *Options) {
		o.Revert = func(ctx context.Context, id string) (store.Patch, error) {
			dl, _ := ctx.Deadline()
			gotWait = time.Until(dl)
			<-ctx.Done()
			return store.Patch{}, fmt.Errorf("%w applying patch S1; the revert of %s was not started", worker.ErrBusy, id)
		}
	})
	f.post(req{body: block("R1")})
	tests := []struct {
		query    string
		code     int
		wantWait time.Duration
		want     string
	}{
		{"?wait=50ms", http.StatusServiceUnavailable, 50 * time.Millisecond, "busy applying patch S1"},
		{"?wait=1m", http.StatusBadRequest, 0, "wait must be a duration above 0 and at most 20s"},
		{"?wait=soon", http.StatusBadRequest, 0, "soon"},
	}
	for _, tt := range tests {
		gotWait = 0
		hr := httptest.NewRequest("POST", "/patches/R1/revert"+tt.query, nil)
		hr.Header.Set("Authorization", "Bearer "+testToken)
		hr.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, hr)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("POST /patches/R1/revert%s = %d %s, want %d with %q", tt.query, rec.Code, rec.Body, tt.code, tt.want)
		}
		if tt.code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("POST /patches/R1/revert%s: 503 without Retry-After", tt.query)
		}
		if gotWait > tt.wantWait {
			t.Errorf("POST /patches/R1/revert%s waited up to %s, want at most %s", tt.query, gotWait, tt.wantWait)
		}
	}
}
