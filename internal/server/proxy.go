package server

import (
	"net"
	"net/http"
	"strings"
)

// The forwarding headers (X-Forwarded-For, -Proto, -Host and Forwarded)
// say who the client was and which URL it used, as a reverse proxy saw
// them. Anyone can send them, so they are believed only under
// --trust-proxy (Options.TrustProxy), and then only for three things:
// the client address in logs (clientAddr), the servers entry of the
// OpenAPI document when there is no --public-url (serverURL), and the
// origin a same-origin request is checked against (check). The Host guard
// and the connection limits never read them: the guard checks Host, the
// limits count the TCP peer (behind a proxy, the proxy).

// lastValue is the last comma-separated entry of the header's last line:
// what the proxy nearest to us appended.
func lastValue(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// forwardedParam is the parameter name (for, proto, host) of the last
// element of the Forwarded header (RFC 7239), unquoted.
func forwardedParam(h http.Header, name string) string {
	el := lastValue(h, "Forwarded")
	for pair := range strings.SplitSeq(el, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, name) {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// forwarded is a forwarding header's value: X-Forwarded-<name>, else the
// Forwarded header's parameter; "" unless --trust-proxy.
func (s *Server) forwarded(r *http.Request, xname, param string) string {
	if !s.opts.TrustProxy {
		return ""
	}
	if v := lastValue(r.Header, xname); v != "" {
		return v
	}
	return forwardedParam(r.Header, param)
}

// clientAddr is the client's address for logs: the TCP peer, or under
// --trust-proxy the address the proxy says it forwarded for.
func (s *Server) clientAddr(r *http.Request) string {
	v := s.forwarded(r, "X-Forwarded-For", "for")
	if v == "" {
		return r.RemoteAddr
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		v = host
	}
	v = strings.Trim(v, "[]")
	if net.ParseIP(v) == nil {
		return r.RemoteAddr
	}
	return v
}

// forwardedOrigin is the origin (scheme://host) the client used as the
// proxy says, under --trust-proxy, when its scheme is http or https and
// its host one the Host guard answers (this machine's names, an
// --allowed-host, --public-url's); "" otherwise.
func (s *Server) forwardedOrigin(r *http.Request) string {
	proto := strings.ToLower(s.forwarded(r, "X-Forwarded-Proto", "proto"))
	host := s.forwarded(r, "X-Forwarded-Host", "host")
	if (proto != "http" && proto != "https") || host == "" || strings.ContainsAny(host, "/@?#\\ ") || !s.guard.hosts[hostName(host)] {
		return ""
	}
	return proto + "://" + strings.ToLower(host)
}
