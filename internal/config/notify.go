package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SettingNotify is the name of the notification setting (--notify).
const SettingNotify = "notify"

// The kinds of notification receivers.
const (
	NotifySlack   = "slack"   // a Slack incoming webhook (text, blocks, colour)
	NotifyDiscord = "discord" // Discord's Slack-compatible endpoint (…/slack)
	NotifyGeneric = "generic" // a JSON POST, signed when a secret is set
)

// The events a receiver may ask for.
const (
	NotifyApplied  = "applied"
	NotifyFailed   = "failed"
	NotifyReverted = "reverted"
)

// Notify is one notification receiver (--notify): where to POST, in which
// shape, for which outcomes, and the secret that signs a generic message.
type Notify struct {
	URL    string   // the URL to POST to, without the options' fragment
	Kind   string   // NotifySlack, NotifyDiscord or NotifyGeneric
	Events []string // of NotifyApplied, NotifyFailed, NotifyReverted; sorted
	Secret string   // HMAC-SHA256 key for generic messages; "" unsigned
}

// ID names the receiver without its secrets: the first 8 hex digits of
// the SHA-256 of its URL. It stays the same across restarts.
func (n Notify) ID() string {
	sum := sha256.Sum256([]byte(n.URL))
	return hex.EncodeToString(sum[:4])
}

// Redacted shows the receiver without anything secret in it: the scheme
// and host, "/…" when there is a path, and its ID, such as
// "https://hooks.slack.com/… #1a2b3c4d". A webhook URL's path is a secret.
func (n Notify) Redacted() string {
	u, err := url.Parse(n.URL)
	if err != nil {
		return "#" + n.ID()
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s + " #" + n.ID()
}

// String is Redacted, so that a receiver printed by mistake shows no secret.
func (n Notify) String() string { return n.Redacted() }

// ParseNotify reads a --notify value: a URL, with options in its fragment
// (which no request carries): kind=slack|discord|generic, events=a list of
// applied, failed, reverted or all, joined by ',' or '+' (default failed), secret=the key that
// signs a generic message. For example
//
//	https://example.com/hook#events=failed,applied&secret=s3cret
//
// The kind is found from the URL when not given: hooks.slack.com is Slack,
// discord.com/api/webhooks/…/slack is Discord's Slack-compatible endpoint,
// anything else generic. Errors never quote the URL (it may be a secret).
func ParseNotify(s string) (Notify, error) {
	raw, frag, _ := strings.Cut(strings.TrimSpace(s), "#")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Notify{}, errors.New("must be an http or https URL with a host and no user:password (options after #)")
	}
	n := Notify{URL: u.String(), Events: []string{NotifyFailed}}
	opts, err := url.ParseQuery(frag)
	if err != nil {
		return Notify{}, errors.New("the options after # must be key=value pairs joined by &")
	}
	for k, vs := range opts {
		v := vs[len(vs)-1]
		switch k {
		case "kind":
			if v != NotifySlack && v != NotifyDiscord && v != NotifyGeneric {
				return Notify{}, fmt.Errorf("kind must be slack, discord or generic, not %q", v)
			}
			n.Kind = v
		case "events":
			ev, err := parseNotifyEvents(v)
			if err != nil {
				return Notify{}, err
			}
			n.Events = ev
		case "secret":
			if v == "" {
				return Notify{}, errors.New("secret must not be empty")
			}
			n.Secret = v
		default:
			return Notify{}, fmt.Errorf("unknown option %q after # (kind, events, secret)", k)
		}
	}
	if n.Kind == "" {
		n.Kind = notifyKind(u)
	}
	if n.Secret != "" && n.Kind != NotifyGeneric {
		return Notify{}, fmt.Errorf("secret signs generic messages only, not %s ones", n.Kind)
	}
	return n, nil
}

// notifyKind finds the kind of receiver a URL names.
func notifyKind(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "hooks.slack.com":
		return NotifySlack
	case (host == "discord.com" || host == "discordapp.com") && strings.HasPrefix(u.Path, "/api/webhooks/") && strings.HasSuffix(u.Path, "/slack"):
		return NotifyDiscord
	}
	return NotifyGeneric
}

func parseNotifyEvents(v string) ([]string, error) {
	var out []string
	// Commas, or '+' (a space once the options are decoded), which a
	// comma-separated PATCHD_NOTIFY can carry.
	for _, e := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch e = strings.ToLower(e); e {
		case "all":
			return []string{NotifyApplied, NotifyFailed, NotifyReverted}, nil
		case NotifyApplied, NotifyFailed, NotifyReverted:
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		default:
			return nil, fmt.Errorf("events must be a list of applied, failed, reverted, or all, not %q", e)
		}
	}
	if out == nil {
		return nil, errors.New("events must name applied, failed, reverted, or all")
	}
	slices.Sort(out)
	return out, nil
}

// formatNotify renders a receiver as ParseNotify reads it.
func formatNotify(n Notify) string {
	q := url.Values{}
	q.Set("kind", n.Kind)
	q.Set("events", strings.Join(n.Events, ","))
	if n.Secret != "" {
		q.Set("secret", n.Secret)
	}
	return n.URL + "#" + q.Encode()
}

// notifyFileValue reads the config file's "notify": a list whose entries
// are URLs (as --notify takes them) or objects
// {"url", "kind", "events", "secret"}.
func notifyFileValue(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []string
	for i, e := range list {
		switch x := e.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			u, _ := x["url"].(string)
			if u == "" {
				return nil, fmt.Errorf("[%d]: url must be a string", i)
			}
			q := url.Values{}
			for k, val := range x {
				switch k {
				case "url":
				case "kind", "secret":
					s, ok := val.(string)
					if !ok {
						return nil, fmt.Errorf("[%d]: %s must be a string", i, k)
					}
					q.Set(k, s)
				case "events":
					var evs []string
					switch ev := val.(type) {
					case string:
						evs = []string{ev}
					case []any:
						for _, one := range ev {
							s, ok := one.(string)
							if !ok {
								return nil, fmt.Errorf("[%d]: events must be strings", i)
							}
							evs = append(evs, s)
						}
					default:
						return nil, fmt.Errorf("[%d]: events must be a list of strings", i)
					}
					q.Set(k, strings.Join(evs, ","))
				default:
					return nil, fmt.Errorf("[%d]: unknown key %q (url, kind, events, secret)", i, k)
				}
			}
			base, _, _ := strings.Cut(u, "#")
			out = append(out, base+"#"+q.Encode())
		default:
			return nil, fmt.Errorf("[%d]: must be a URL or an object with url", i)
		}
	}
	if out == nil {
		out = []string{"none"}
	}
	return out, nil
}

// notifySettings is the notification setting.
func notifySettings() []setting {
	return []setting{
		{name: SettingNotify, repeat: true, def: "",
			notArgs: "a secret (a webhook URL, a signing key): service definitions read it from the config file",
			format: func(c *Config) []string {
				var out []string
				for _, n := range c.Notify {
					out = append(out, formatNotify(n))
				}
				return out
			},
			usage: "POST a notification of each failed patch to this URL (repeatable): Slack, Discord's …/slack, or generic JSON signed with HMAC-SHA256; options after #: events=failed,applied,reverted|all, kind=slack|discord|generic, secret=KEY",
			apply: func(c *Config, v []string) error {
				c.Notify = nil
				for i, s := range v {
					if s == "" || s == "none" {
						continue
					}
					n, err := ParseNotify(s)
					if err != nil {
						return fmt.Errorf("receiver %d: %w", i+1, err)
					}
					if slices.ContainsFunc(c.Notify, func(o Notify) bool { return o.URL == n.URL }) {
						return fmt.Errorf("receiver %d: the same URL is given twice", i+1)
					}
					c.Notify = append(c.Notify, n)
				}
				return nil
			}},
	}
}
