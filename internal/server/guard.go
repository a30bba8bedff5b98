package server

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/config"
)

// guard refuses what a web page in the user's browser could make the
// browser send: requests addressed to another site's name that reached us
// through DNS rebinding (the Host header), and requests from another site's
// page (the Origin header).
type guard struct {
	// checkHost is on when the server listens on loopback only: then every
	// legitimate client names this machine, or a name it was told of.
	checkHost bool
	address   string
	hosts     map[string]bool
	origins   map[string]bool
}

// loopbackNames are the names of this machine every loopback server answers to.
var loopbackNames = [...]string{"localhost", "127.0.0.1", "::1"}

func newGuard(opts Options) *guard {
	g := &guard{address: opts.Address, hosts: map[string]bool{}, origins: map[string]bool{}}
	if host, _, err := net.SplitHostPort(opts.Address); err == nil && config.IsLoopback(host) {
		g.checkHost = true
		g.hosts[hostName(host)] = true
	}
	for _, h := range loopbackNames {
		g.hosts[h] = true
	}
	for _, h := range opts.AllowedHosts {
		g.hosts[hostName(h)] = true
	}
	for _, o := range opts.AllowedOrigins {
		g.origins[strings.ToLower(o)] = true
	}
	if u, err := url.Parse(opts.PublicURL); err == nil && opts.PublicURL != "" {
		g.hosts[hostName(u.Host)] = true
		g.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return g
}

// hostName is the name of a Host header value: without the port and the
// brackets of an IPv6 address, lower case, without a final dot.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func (g *guard) hostOK(host string) bool {
	return !g.checkHost || host == "" || g.hosts[hostName(host)]
}

// originOK admits requests without an Origin (not from a browser page), an
// origin allowed by --allowed-origin, and the same origin as the Host (a
// page we served ourselves).
func (g *guard) originOK(origin, host string) bool {
	if origin == "" {
		return true
	}
	o := strings.ToLower(origin)
	if g.origins[o] {
		return true
	}
	h := strings.ToLower(host)
	return h != "" && (o == "http://"+h || o == "https://"+h)
}

// check answers 403 and returns false for a refused request.
func (s *Server) check(w http.ResponseWriter, r *http.Request) bool {
	g := s.guard
	if !g.hostOK(r.Host) {
		s.refusef(w, r, api.KindForbidden, api.CodeForbiddenHost, "", "refused Host %q: patchd listens on %s and answers only requests addressed to this machine (localhost, 127.0.0.1, [::1]) or to an --allowed-host; behind a tunnel or a proxy, start it with --allowed-host %s",
			clip(r.Host), g.address, clip(hostName(r.Host)))
		return false
	}
	if origin := r.Header.Get("Origin"); !g.originOK(origin, r.Host) && (origin == "" || !strings.EqualFold(origin, s.forwardedOrigin(r))) {
		s.refusef(w, r, api.KindForbidden, api.CodeForbiddenOrigin, "", "refused Origin %q: a web page from another site may not call patchd; to allow this one, start it with --allowed-origin %s",
			clip(origin), clip(origin))
		return false
	}
	return true
}

// jsonBody refuses, with 415, a request that changes state without a JSON
// Content-Type: a web page can make a browser send a POST to another site
// only with no type, text/plain or a form type.
func (s *Server) jsonBody(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return true
	}
	if ct == "" {
		s.refusef(w, r, api.KindUnsupported, api.CodeContentTypeMissing, "", "missing Content-Type: send 'Content-Type: application/json'")
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != "text/json") {
		s.refusef(w, r, api.KindUnsupported, api.CodeContentType, "", "unsupported Content-Type %q: send application/json", clip(ct))
		return false
	}
	return true
}
