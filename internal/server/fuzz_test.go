package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/patchd/patchd/internal/auth"
	"github.com/patchd/patchd/internal/patchsvc"
	"github.com/patchd/patchd/internal/store"
	"github.com/patchd/patchd/internal/workspace"
)

// FuzzWebhook sends arbitrary bodies, content types and credentials
// through the real webhook handler, with a real store and workspace
// behind it, and checks what every sender relies on: the answer is always
// the seed's JSON shape; only valid credentials get past 401; a healthy
// store never causes a 5xx; a 2xx means exactly this body is stored under
// the id answered, and a refusal stores nothing.
//
// FuzzParse covers the block parser alone; this adds everything around it:
// the body limit, Content-Type parsing, signatures, path checks on every
// target, the store's own checks of ids and sizes, duplicates and
// conflicts, and the encoding of error messages built from the input.
func FuzzWebhook(f *testing.F) {
	fx := fuzzFixture(f)
	// The seed corpus is in testdata/fuzz/FuzzWebhook; these cover the
	// credential modes on a valid block.
	for creds := range uint8(4) {
		f.Add([]byte(block("seed")), "application/json", creds)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, creds uint8) {
		before := fx.store.Stats().Total
		hr := httptest.NewRequest("POST", "/webhook", bytes.NewReader(body))
		if contentType != "" {
			hr.Header.Set("Content-Type", contentType)
		}
		authorized := false
		switch creds % 4 {
		case 0:
			hr.Header.Set("Authorization", "Bearer "+testToken)
			authorized = true
		case 1:
			hr.Header.Set(auth.SignatureHeader, auth.Sign(body, testToken))
			authorized = true
		case 2:
			// No credentials.
		case 3:
			hr.Header.Set("Authorization", "Bearer "+testToken+"x")
		}
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, hr)

		// A healthy store has no reason for a 5xx, 503 included.
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized,
			http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("POST %q (Content-Type %q, creds %d) = %d %s", body, contentType, creds%4, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("POST %q: Content-Type %q, want application/json", body, ct)
		}
		var a answer
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("POST %q = %d %q: not the answer shape: %v", body, rec.Code, rec.Body, err)
		}
		if !authorized && rec.Code != http.StatusUnauthorized {
			t.Fatalf("POST %q without valid credentials (mode %d) = %d %s, want 401", body, creds%4, rec.Code, rec.Body)
		}

		total := fx.store.Stats().Total
		if rec.Code != http.StatusOK && rec.Code != http.StatusAccepted {
			if a.Status != "error" || a.Result.Success || a.Result.Error == "" || a.Result.PatchID != "" {
				t.Fatalf("POST %q = %d %+v, want an error answer with a message", body, rec.Code, a)
			}
			if total != before {
				t.Fatalf("POST %q refused with %d, yet the store went from %d to %d patches", body, rec.Code, before, total)
			}
			return
		}
		if a.Status != "accepted" || !a.Result.Success || a.Result.Error != "" || a.Result.PatchID == "" ||
			a.Result.Duplicate != (rec.Code == http.StatusOK) {
			t.Fatalf("POST %q = %d %+v, want an acceptance", body, rec.Code, a)
		}
		if want := before + btoi(rec.Code == http.StatusAccepted); total != want {
			t.Fatalf("POST %q = %d: store went from %d to %d patches, want %d", body, rec.Code, before, total, want)
		}
		p, ok := fx.store.Get(a.Result.PatchID)
		sum := sha256.Sum256(body)
		if !ok || p.Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("POST %q = %d for %q, but the store has %+v (found %v)", body, rec.Code, a.Result.PatchID, p, ok)
		}
		if stored, err := fx.store.Body(p.ID); err != nil || !bytes.Equal(stored, body) {
			t.Fatalf("POST %q: stored body %q, %v", body, stored, err)
		}
	})
}

// fuzzFixture is newFixture with a small body limit, so that the fuzzer
// reaches 413, and a store that does not fsync: durability is not what
// this fuzzes, and an fsync per accepted input would slow it down.
func fuzzFixture(f *testing.F) *fixture {
	dir := f.TempDir()
	st, err := store.Open(filepath.Join(dir, "queue"), store.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	ws, err := workspace.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ws.Close() })
	svc := patchsvc.New(patchsvc.Options{Store: st, Workspace: ws})
	return &fixture{srv: New(Options{Service: svc, Token: testToken, MaxBodyBytes: 4 << 10}), store: st, ws: ws, svc: svc}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
