package apiclient

import (
	"net/http"
	"testing"

	"github.com/patchd/patchd/internal/api"
)

// TestRefusal: a refusal in the server's shape comes back as the
// *api.Error it was, its Kind from the status; any other body is quoted.
func TestRefusal(t *testing.T) {
	e := refusal(404, []byte(`{"status":"error","result":{"success":false,"error":"no patch with id \"x\"","code":"patch_not_found","field":"id"}}`))
	if e.Kind != api.KindNotFound || e.Code != api.CodePatchNotFound || e.Field != "id" || e.Message != `no patch with id "x"` {
		t.Errorf("refusal = %+v", e)
	}
	e = refusal(502, []byte("bad gateway\n"))
	if e.Kind != api.KindInternal || e.Code != api.CodeInternal || e.Message != "the daemon answered HTTP 502: bad gateway" {
		t.Errorf("refusal = %+v", e)
	}
}

// TestKindOf: each Kind's status (as api.Kind.HTTPStatus gives it)
// maps back to that Kind.
func TestKindOf(t *testing.T) {
	for status, kind := range map[int]api.Kind{
		http.StatusBadRequest: api.KindInvalid, http.StatusUnauthorized: api.KindUnauthorized,
		http.StatusForbidden: api.KindForbidden, http.StatusNotFound: api.KindNotFound,
		http.StatusConflict: api.KindConflict, http.StatusGone: api.KindGone,
		http.StatusRequestEntityTooLarge: api.KindTooLarge, http.StatusUnsupportedMediaType: api.KindUnsupported,
		http.StatusUnprocessableEntity: api.KindUnprocessable, http.StatusTooManyRequests: api.KindRateLimited,
		http.StatusServiceUnavailable: api.KindUnavailable, http.StatusInternalServerError: api.KindInternal,
	} {
		if got := kindOf(status); got != kind {
			t.Errorf("kindOf(%d) = %s, want %s", status, got, kind)
		}
	}
}
