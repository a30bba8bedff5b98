package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// sessionAnswer is GET /ui/api/session: whether the browser is logged in,
// and the CSRF token its page sends back with every change.
type sessionAnswer struct {
	LoggedIn bool   `json:"logged_in"`
	NoAuth   bool   `json:"no_auth,omitempty"` // --no-auth: the login takes any token
	CSRF     string `json:"csrf,omitempty"`
}

func (d *Dashboard) handleSession(w http.ResponseWriter, r *http.Request) {
	a := sessionAnswer{NoAuth: d.token() == ""}
	if _, s, ok := d.session(r); ok {
		a.LoggedIn, a.CSRF = true, s.csrf
	}
	writeJSON(w, http.StatusOK, a)
}

// handleLogin is POST /ui/login {"token": "..."}: the right token opens a
// session (the cookie); a wrong one is refused with 401, and more than
// maxLoginFailures wrong ones in a minute with 429 until it has passed.
// Only the dashboard's own page may log in (a login from another site
// would put the browser in a session it did not choose).
func (d *Dashboard) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !d.sameOrigin(r) {
		d.refusef(w, api.KindForbidden, api.CodeForbiddenOrigin, "refused: log in from the dashboard's own page (Origin %q, Sec-Fetch-Site %q)", clip(r.Header.Get("Origin")), clip(r.Header.Get("Sec-Fetch-Site")))
		return
	}
	now := d.now()
	if !d.sessions.loginAllowed(now) {
		w.Header().Set("Retry-After", strconv.Itoa(int(loginWindow.Seconds())))
		d.refusef(w, api.KindRateLimited, api.CodeRateLimited, "too many wrong tokens: try again in a minute")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		d.refuse(w, api.Errorf(api.KindInvalid, api.CodeMalformedJSON, "token", "send the token as JSON, {\"token\": \"…\"}: %v", err))
		return
	}
	tok := d.token()
	if tok != "" && !tokenOK(req.Token, tok) {
		d.sessions.failed(now)
		d.log.Warn("dashboard: login with a wrong token refused", "client", r.RemoteAddr)
		d.refusef(w, api.KindUnauthorized, api.CodeUnauthorized, "wrong token: paste the token 'patchd token' prints")
		return
	}
	id, s := d.sessions.open(tok, now)
	d.setCookie(w, r, id, int(sessionTTL.Seconds()))
	writeJSON(w, http.StatusOK, sessionAnswer{LoggedIn: true, NoAuth: tok == "", CSRF: s.csrf})
}

func (d *Dashboard) handleLogout(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.writer(w, r); !ok {
		return
	}
	id, _, _ := d.session(r)
	d.sessions.close(id)
	d.setCookie(w, r, "", -1)
	writeJSON(w, http.StatusOK, sessionAnswer{})
}

// statusAnswer is GET /ui/api/status: the health card.
type statusAnswer struct {
	Status        string         `json:"status"` // up, or starting
	UptimeSeconds float64        `json:"uptime_seconds"`
	PID           int            `json:"pid"`
	Port          int            `json:"port"`
	Version       string         `json:"version"`
	StartedAt     time.Time      `json:"started_at"`
	Queue         api.QueueStats `json:"queue"`
	Recent        *api.Recent    `json:"recent,omitempty"`
	Standbys      int            `json:"standbys"` // processes standing by to take over
	LastEventID   uint64         `json:"last_event_id"`
	// Notify is each notification receiver's outbox (redacted URL,
	// pending, delivered, failed, the last error): failed deliveries are
	// seen on the health card.
	Notify []api.NotifyStatus `json:"notify,omitempty"`
}

func (d *Dashboard) handleStatus(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.reader(w, r); !ok {
		return
	}
	st, err := d.opts.Service.Status(r.Context())
	if err != nil {
		d.refuse(w, err)
		return
	}
	i := d.opts.Info
	a := statusAnswer{Status: "up", UptimeSeconds: d.now().Sub(i.StartedAt).Seconds(), PID: i.PID, Port: i.Port,
		Version: i.Version, StartedAt: i.StartedAt, Queue: st.Queue, Recent: st.Recent, LastEventID: st.LastEventID, Notify: st.Notify}
	if d.opts.Standbys != nil {
		a.Standbys = d.opts.Standbys()
	}
	if d.opts.Ready != nil && !d.opts.Ready() {
		a.Status = "starting"
	}
	writeJSON(w, http.StatusOK, a)
}

// handleList is GET /ui/api/patches?state=&cursor=&limit=: a page of the
// history, newest first, as GET /patches answers it.
func (d *Dashboard) handleList(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.reader(w, r); !ok {
		return
	}
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			d.refuse(w, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "limit", "limit must be a number from 1 to %d, not %q", api.MaxListLimit, clip(v)))
			return
		}
		limit = n
	}
	l, err := d.opts.Service.List(r.Context(), api.ListOptions{Cursor: q.Get("cursor"), Limit: limit, State: q.Get("state"), MaxChars: api.ListPageChars})
	if err != nil {
		d.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// patchAnswer is GET /ui/api/patches/{id}: the patch (a long diff in
// parts, ?diff_offset= for the next), who sent it (the block's metadata)
// and, for a failed patch, the body it was sent with (to edit and resend).
type patchAnswer struct {
	Patch    api.PatchView   `json:"patch"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Body     string          `json:"body,omitempty"`
}

func (d *Dashboard) handleGet(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.reader(w, r); !ok {
		return
	}
	offset := 0
	if v := r.URL.Query().Get("diff_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			d.refuse(w, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "diff_offset", "diff_offset must be a byte offset, a number from 0, not %q", clip(v)))
			return
		}
		offset = n
	}
	p, err := d.opts.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		d.refuse(w, err)
		return
	}
	api.FitPatch(&p, offset)
	a := patchAnswer{Patch: p}
	if b, ok := d.opts.Service.(api.Bodies); ok {
		if body, err := b.Body(r.Context(), p.ID); err == nil {
			var block struct {
				Metadata json.RawMessage `json:"metadata"`
			}
			if json.Unmarshal(body, &block) == nil && len(block.Metadata) > 0 && len(block.Metadata) <= 8<<10 {
				a.Metadata = block.Metadata
			}
			if p.State == api.StateFailed {
				a.Body = string(body)
			}
		}
	}
	writeJSON(w, http.StatusOK, a)
}

// actionAnswer is the answer to a revert or a resend.
type actionAnswer struct {
	PatchID string `json:"patch_id"`
	State   string `json:"state"`
	Attempt int    `json:"attempt,omitempty"`
}

func (d *Dashboard) handleRevert(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.writer(w, r); !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), api.MaxRevertWait)
	defer cancel()
	p, err := d.opts.Service.Revert(ctx, r.PathValue("id"))
	if err != nil {
		d.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, actionAnswer{PatchID: p.ID, State: p.State})
}

// readBody reads a resend's or a preview's body, at most MaxBodyBytes.
func (d *Dashboard) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, d.opts.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			d.refuse(w, api.Errorf(api.KindTooLarge, api.CodeBodyTooLarge, "", "the patch is over %d bytes (--max-body-bytes)", d.opts.MaxBodyBytes))
		} else {
			d.refuse(w, api.Errorf(api.KindInvalid, api.CodeBodyUnreadable, "", "read the body: %v", err))
		}
		return nil, false
	}
	return body, true
}

// handleResend is POST /ui/api/patches/{id}/resend: the edited body of a
// failed patch, submitted again under its id (a new attempt).
func (d *Dashboard) handleResend(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.writer(w, r); !ok {
		return
	}
	body, ok := d.readBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var block struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &block) == nil && block.ID != id {
		d.refuse(w, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "id", "a resend keeps the patch's id %q, not %q", clip(id), clip(block.ID)))
		return
	}
	res, err := d.opts.Service.Submit(r.Context(), api.SubmitRequest{Body: body})
	if err != nil {
		d.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, actionAnswer{PatchID: res.PatchID, State: res.State, Attempt: res.Attempt})
}

// previewAnswer is the answer to POST /ui/api/preview.
type previewAnswer struct {
	api.PreviewResult
	Notes []string `json:"notes,omitempty"`
}

func (d *Dashboard) handlePreview(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.writer(w, r); !ok {
		return
	}
	body, ok := d.readBody(w, r)
	if !ok {
		return
	}
	res, err := d.opts.Service.Preview(r.Context(), api.PreviewRequest{Body: body})
	if err != nil {
		d.refuse(w, err)
		return
	}
	a := previewAnswer{Notes: api.FitPreview(&res)}
	a.PreviewResult = res
	writeJSON(w, http.StatusOK, a)
}
