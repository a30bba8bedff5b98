// Package dashboard is patchd's web dashboard, served at / by the HTTP
// server: a door beside internal/server and internal/mcpserver, a thin
// adapter over api.Service.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// framework to vendor, no build step, no CDN: it works offline and weighs
// a few kilobytes). The browser logs in once with the token and then holds
// a session cookie (session.go); the page reads and acts through the JSON
// endpoints under /ui/api/, which take that cookie and, for what changes
// state, a per-session CSRF token and a same-origin check. The bearer-token
// API is unchanged; GET /events accepts the session cookie too
// (Authenticated), so that the page's EventSource follows the patches live.
package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/patchd/patchd/internal/api"
)

//go:embed static
var staticFiles embed.FS

// Info describes the running instance for the health card.
type Info struct {
	PID       int
	Port      int
	Version   string
	StartedAt time.Time
}

// Options configures a Dashboard.
type Options struct {
	// Service serves the patch use cases. If it is also an api.Bodies the
	// page shows who sent a patch (its metadata) and can edit and resend
	// the body of a failed one.
	Service api.Service
	// Token returns the token in force; "" means --no-auth (the login
	// then takes any token). A session opened with another token than
	// the one in force now is refused: a rotation logs every browser out.
	Token func() string
	Info  Info
	// Ready reports whether the daemon serves (the store is open and the
	// worker runs); nil means it does.
	Ready func() bool
	// Standbys counts the processes standing by to take over (patchd run
	// --if-running=standby); nil means none are counted.
	Standbys func() int
	// PublicURL (--public-url): its origin may send state-changing
	// requests, and an https one makes the cookie Secure.
	PublicURL string
	// MaxBodyBytes limits the bodies of resend and preview.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Dashboard is the http.Handler of / and /ui/.
type Dashboard struct {
	opts         Options
	mux          *http.ServeMux
	sessions     *sessions
	publicOrigin string
	log          *slog.Logger
}

// New returns a Dashboard.
func New(opts Options) *Dashboard {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Token == nil {
		opts.Token = func() string { return "" }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	d := &Dashboard{opts: opts, mux: http.NewServeMux(), sessions: newSessions(), publicOrigin: publicOrigin(opts.PublicURL), log: opts.Logger}
	sub, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(sub)
	d.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})
	d.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", files))
	d.mux.HandleFunc("GET /ui/api/session", d.handleSession)
	d.mux.HandleFunc("POST /ui/login", d.handleLogin)
	d.mux.HandleFunc("POST /ui/logout", d.handleLogout)
	d.mux.HandleFunc("GET /ui/api/status", d.handleStatus)
	d.mux.HandleFunc("GET /ui/api/patches", d.handleList)
	d.mux.HandleFunc("GET /ui/api/patches/{id}", d.handleGet)
	d.mux.HandleFunc("POST /ui/api/patches/{id}/revert", d.handleRevert)
	d.mux.HandleFunc("POST /ui/api/patches/{id}/resend", d.handleResend)
	d.mux.HandleFunc("POST /ui/api/preview", d.handlePreview)
	return d
}

// contentSecurityPolicy lets the page load only its own files: no inline
// script or style, no frame around it, no form posted elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) token() string  { return d.opts.Token() }
func (d *Dashboard) now() time.Time { return d.opts.Now() }

// errorBody is every refusal of the dashboard's endpoints.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// refuse answers err (an *api.Error, or any error as internal) with the
// status its Kind maps to.
func (d *Dashboard) refuse(w http.ResponseWriter, err error) {
	e := api.ErrorOf(err)
	writeJSON(w, e.Kind.HTTPStatus(), errorBody{Error: api.FitMessage(e.Message), Code: e.Code, Field: e.Field})
}

func (d *Dashboard) refusef(w http.ResponseWriter, kind api.Kind, code, format string, args ...any) {
	d.refuse(w, api.Errorf(kind, code, "", format, args...))
}

// reader checks that r comes with a valid session; otherwise it answers 401.
func (d *Dashboard) reader(w http.ResponseWriter, r *http.Request) (*session, bool) {
	_, s, ok := d.session(r)
	if !ok {
		d.refusef(w, api.KindUnauthorized, api.CodeUnauthorized, "not logged in, or the session expired or the token was rotated: log in with the token (patchd token prints it)")
		return nil, false
	}
	return s, true
}

// writer checks what reader does, and that the request changes state
// from the dashboard's own page: the same origin (Origin, Sec-Fetch-Site)
// and the session's CSRF token in the X-Patchd-CSRF header; otherwise it
// answers 403.
func (d *Dashboard) writer(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, ok := d.reader(w, r)
	if !ok {
		return nil, false
	}
	if !d.sameOrigin(r) {
		d.refusef(w, api.KindForbidden, api.CodeForbiddenOrigin, "refused: a request that changes state must come from the dashboard's own page (Origin %q, Sec-Fetch-Site %q)", clip(r.Header.Get("Origin")), clip(r.Header.Get("Sec-Fetch-Site")))
		return nil, false
	}
	if !csrfOK(r.Header.Get(CSRFHeader), s) {
		d.refusef(w, api.KindForbidden, "csrf_token_invalid", "refused: missing or wrong %s header (the session's CSRF token, which GET /ui/api/session gives the dashboard's page)", CSRFHeader)
		return nil, false
	}
	return s, true
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
