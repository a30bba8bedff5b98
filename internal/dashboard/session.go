package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The session model. Logging in with the token gives the browser a cookie
// holding an opaque random session id (never the token); the session,
// kept here in memory, holds a CSRF token the page sends back in a header
// with every request that changes state, the time it expires, and a hash
// of the token it was opened with: once the token is rotated every
// session opened with the old one is refused. A restart of the daemon
// forgets every session (the user logs in again).
const (
	// SessionCookie is the cookie's name.
	SessionCookie = "patchd_session"
	// CSRFHeader carries the session's CSRF token on state-changing requests.
	CSRFHeader = "X-Patchd-CSRF"
	// sessionTTL is how long a session lives after the login.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the sessions kept; the oldest goes first.
	maxSessions = 256
	// Wrong logins: at most maxLoginFailures in loginWindow, then 429
	// until the window has passed (the token is 256 random bits and is
	// compared in constant time; this keeps the log and the CPU quiet).
	maxLoginFailures = 10
	loginWindow      = time.Minute
)

// session is one logged-in browser.
type session struct {
	csrf     string
	expires  time.Time
	tokenSum [32]byte // sha256 of the token in force at the login
}

// sessions holds the sessions by id and the recent failed logins.
type sessions struct {
	mu    sync.Mutex
	m     map[string]*session
	fails []time.Time
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

// randomID is 32 random bytes, base64url.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open starts a session for a browser that gave token; it returns its id.
func (ss *sessions) open(token string, now time.Time) (id string, s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, v := range ss.m {
		if !now.Before(v.expires) {
			delete(ss.m, k)
		}
	}
	for len(ss.m) >= maxSessions {
		var oldest string
		for k, v := range ss.m {
			if oldest == "" || v.expires.Before(ss.m[oldest].expires) {
				oldest = k
			}
		}
		delete(ss.m, oldest)
	}
	id = randomID()
	s = &session{csrf: randomID(), expires: now.Add(sessionTTL), tokenSum: sha256.Sum256([]byte(token))}
	ss.m[id] = s
	return id, s
}

// get returns the session with id while it has not expired and was opened
// with token (the token in force now).
func (ss *sessions) get(id, token string, now time.Time) (*session, bool) {
	if id == "" {
		return nil, false
	}
	ss.mu.Lock()
	s, ok := ss.m[id]
	if ok && (!now.Before(s.expires) || s.tokenSum != sha256.Sum256([]byte(token))) {
		delete(ss.m, id)
		ok = false
	}
	ss.mu.Unlock()
	return s, ok
}

func (ss *sessions) close(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
}

// loginAllowed reports whether another login may be tried now.
func (ss *sessions) loginAllowed(now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	kept := ss.fails[:0]
	for _, t := range ss.fails {
		if now.Sub(t) < loginWindow {
			kept = append(kept, t)
		}
	}
	ss.fails = kept
	return len(ss.fails) < maxLoginFailures
}

func (ss *sessions) failed(now time.Time) {
	ss.mu.Lock()
	ss.fails = append(ss.fails, now)
	ss.mu.Unlock()
}

// tokenOK compares a token given at the login with the one in force, in
// constant time.
func tokenOK(given, token string) bool {
	g, t := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(g[:], t[:]) == 1
}

// csrfOK compares the CSRF header with the session's, in constant time.
func csrfOK(given string, s *session) bool {
	return given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(s.csrf)) == 1
}

// sameOrigin reports whether a request that changes state comes from a
// page of this dashboard: a browser names the page's origin in Origin
// (every POST) and says same-origin in Sec-Fetch-Site; a request with
// neither is refused too, since the dashboard's own page always sends
// them. The origin must be the request's own (http or https and its
// Host) or that of --public-url.
func (d *Dashboard) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return false
	}
	origin := strings.ToLower(r.Header.Get("Origin"))
	if origin == "" {
		return site == "same-origin"
	}
	host := strings.ToLower(r.Host)
	if host != "" && (origin == "http://"+host || origin == "https://"+host) {
		return true
	}
	return d.publicOrigin != "" && origin == d.publicOrigin
}

// publicOrigin is scheme://host of a public URL, lower case, "" if none.
func publicOrigin(public string) string {
	u, err := url.Parse(public)
	if err != nil || public == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// secure reports whether the cookie must be Secure: the request came over
// TLS, or through an https --public-url (a tunnel: the page's Origin, or
// the Host, is the public one). A browser on http://127.0.0.1 of the same
// daemon gets a cookie it keeps (a Secure one over http would be dropped).
func (d *Dashboard) secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !strings.HasPrefix(d.publicOrigin, "https://") {
		return false
	}
	return strings.EqualFold(r.Header.Get("Origin"), d.publicOrigin) || strings.EqualFold("https://"+r.Host, d.publicOrigin)
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: d.secure(r),
	})
}

// session returns the request's session, if it has a valid one.
func (d *Dashboard) session(r *http.Request) (string, *session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", nil, false
	}
	s, ok := d.sessions.get(c.Value, d.token(), d.now())
	return c.Value, s, ok
}

// Authenticated reports whether r carries the cookie of a valid session
// (the server lets such a request read GET /events, which changes
// nothing).
func (d *Dashboard) Authenticated(r *http.Request) bool {
	_, _, ok := d.session(r)
	return ok
}
