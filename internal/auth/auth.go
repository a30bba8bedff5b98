// Package auth holds the webhook's credentials: the bearer token generated
// on first start, and the optional HMAC-SHA256 body signature.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchd/patchd/internal/fsutil"
)

// SignatureHeader carries `sha256=<hex>` of the body, keyed with the token.
const SignatureHeader = "X-Patchd-Signature"

// LoadOrCreateToken returns the token stored at path, creating it (0600) if
// there is none. Creation is race-free: the new token is written and synced
// under a temporary name, then linked into place, which fails if another
// process got there first; the loser reads the winner's token.
func LoadOrCreateToken(path string) (string, error) {
	if tok, err := ReadToken(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return tok, err
	}
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".token.tmp-*")
	if err != nil {
		return "", fmt.Errorf("create token %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.WriteString(tok + "\n")
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write token %s: %w", path, err)
		}
	} else {
		tmp.Close()
		return "", fmt.Errorf("create token %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return ReadToken(path)
		}
		return "", fmt.Errorf("create token %s: %w", path, err)
	}
	return tok, fsutil.SyncDir(dir)
}

// newToken returns 32 random bytes in hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// RotateToken replaces the token at path with a new one and returns it.
// The file is replaced atomically (a temporary file of mode 0600, written
// and synced, renamed over it, the directory synced): a reader sees the
// old token or the new one, never a part. A daemon keeps the token it
// read until it is told to read it again.
func RotateToken(path string) (string, error) {
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("rotate token: %w", err)
	}
	return tok, nil
}

// ReadToken reads the token at path.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// BearerOK reports whether an Authorization header value carries token.
func BearerOK(header, token string) bool {
	scheme, value, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(value)), []byte(token)) == 1
}

// Sign returns the signature header value for body.
func Sign(body []byte, token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SignatureOK reports whether header is a valid signature of body.
func SignatureOK(header string, body []byte, token string) bool {
	return hmac.Equal([]byte(strings.TrimSpace(header)), []byte(Sign(body, token)))
}
