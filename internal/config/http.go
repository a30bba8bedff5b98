package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// httpSettings are the settings of the HTTP front: which Host and Origin
// headers are answered.
func httpSettings() []setting {
	return []setting{
		{name: "allowed-host", format: func(c *Config) []string { return c.AllowedHosts }, def: "", repeat: true, usage: "also answer requests whose Host header names this host (a tunnel's or proxy's name; repeatable)", apply: func(c *Config, v []string) error {
			c.AllowedHosts = nil
			for _, s := range v {
				if s == "" {
					continue
				}
				h, err := ParseAllowedHost(s)
				if err != nil {
					return err
				}
				c.AllowedHosts = append(c.AllowedHosts, h)
			}
			return nil
		}},
		{name: "allowed-origin", format: func(c *Config) []string { return c.AllowedOrigins }, def: "", repeat: true, usage: "also answer browser requests from this origin, like https://chat.openai.com (repeatable)", apply: func(c *Config, v []string) error {
			c.AllowedOrigins = nil
			for _, s := range v {
				if s == "" {
					continue
				}
				o, err := ParseOrigin(s)
				if err != nil {
					return err
				}
				c.AllowedOrigins = append(c.AllowedOrigins, o)
			}
			return nil
		}},
		{name: "public-url", format: text(func(c *Config) string { return c.PublicURL }), def: "", usage: "the URL clients reach patchd at (a tunnel's https URL): the servers entry of /openapi.json, and its host and origin are answered", apply: func(c *Config, v []string) error {
			u, err := ParsePublicURL(last(v))
			c.PublicURL = u
			return err
		}},
		{name: "trust-proxy", format: boolean(func(c *Config) bool { return c.TrustProxy }), def: "false", usage: "believe X-Forwarded-For/-Proto/-Host and Forwarded, which only a reverse proxy you run may set: the client address in logs, the servers entry of /openapi.json without --public-url, and the origin same-origin requests are checked against", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.TrustProxy = b
			return nil
		}},
		{name: "health-detail", format: text(func(c *Config) string { return c.HealthDetail }), def: "token", usage: "who sees /health's details (pid, port, version, system, queue): token (requests with the token) or public", apply: func(c *Config, v []string) error {
			c.HealthDetail = last(v)
			if c.HealthDetail != "token" && c.HealthDetail != "public" {
				return fmt.Errorf("must be token or public, not %q", c.HealthDetail)
			}
			return nil
		}},
		{name: "metrics-public", format: boolean(func(c *Config) bool { return c.MetricsPublic }), def: "false", usage: "serve GET /metrics (Prometheus) without the token, for a scraper that cannot send it", apply: func(c *Config, v []string) error {
			b, err := strconv.ParseBool(last(v))
			if err != nil {
				return fmt.Errorf("must be true or false, not %q", last(v))
			}
			c.MetricsPublic = b
			return nil
		}},
		{name: "max-conns", format: integer(func(c *Config) int { return c.MaxConns }), def: "0", usage: "most HTTP connections open at once (0 = from the file limit: what it leaves after 256 kept for the journal, logs and workspace files, at most 4096)", apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(last(v))
			if err != nil || n < 0 {
				return fmt.Errorf("must be a number of connections, 0 for the default, not %q", last(v))
			}
			c.MaxConns = n
			return nil
		}},
		{name: "max-conns-per-client", format: integer(func(c *Config) int { return c.MaxConnsPerClient }), def: "0", usage: "most HTTP connections open at once from one client address (0 = half of --max-conns)", apply: func(c *Config, v []string) error {
			n, err := strconv.Atoi(last(v))
			if err != nil || n < 0 {
				return fmt.Errorf("must be a number of connections, 0 for the default, not %q", last(v))
			}
			c.MaxConnsPerClient = n
			return nil
		}},
	}
}

// ParsePublicURL checks a --public-url: http or https with a host, no
// credentials, query or fragment; https unless the host is loopback, since
// the URL is where agents send the token. "" stays "". The result has no
// trailing slash.
func ParsePublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("must be a URL like https://patchd.example.com (http or https, a host, no query), not %q", s)
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return "", fmt.Errorf("must be https unless its host is loopback: agents send the token to it, not %q", s)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// ParseAllowedHost checks a host name or address, with or without a port,
// and returns the name alone, lower-cased: ports are not compared.
func ParseAllowedHost(s string) (string, error) {
	h := s
	if host, port, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("must be a host name or address like patchd.example.com, not %q", s)
		}
		h = host
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "" || strings.ContainsAny(s, "/ @?#*") {
		return "", fmt.Errorf("must be a host name or address like patchd.example.com, not %q", s)
	}
	return h, nil
}

// ParseOrigin checks a web origin (scheme://host[:port], as browsers send
// it in the Origin header) and returns it in lower case.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("must be an origin like https://chat.openai.com (scheme and host, no path), not %q", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
