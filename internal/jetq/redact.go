package jetq

import (
	"net/url"
	"strings"
)

// Redact drops any user information from a list of server URLs, for
// messages: a URL may carry a password.
func Redact(s string) string {
	if s == "" {
		return "the in-process server"
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(a server URL that does not parse)"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
