package auth

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestLoadOrCreateTokenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	const n = 20
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := LoadOrCreateToken(path)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	for i, tok := range toks {
		if tok != toks[0] || len(tok) != 64 {
			t.Errorf("token %d = %q, want every caller to get the same 64-hex token %q", i, tok, toks[0])
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the token", len(entries))
	}
	again, _ := LoadOrCreateToken(path)
	if again != toks[0] {
		t.Errorf("second load = %q, want the stored %q", again, toks[0])
	}
}

func TestBearerAndSignature(t *testing.T) {
	const tok = "secret"
	tests := []struct {
		header string
		want   bool
	}{
		{"Bearer secret", true},
		{"bearer secret", true},
		{"Bearer  secret ", true},
		{"Bearer wrong", false},
		{"Basic secret", false},
		{"secret", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := BearerOK(tt.header, tok); got != tt.want {
			t.Errorf("BearerOK(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
	body := []byte(`{"id":"x"}`)
	sig := Sign(body, tok)
	if !SignatureOK(sig, body, tok) {
		t.Errorf("SignatureOK(Sign(body)) = false")
	}
	if SignatureOK(sig, []byte(`{"id":"y"}`), tok) || SignatureOK("sha256=00", body, tok) {
		t.Errorf("SignatureOK accepted a wrong signature")
	}
}
