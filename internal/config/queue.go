package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Queue is how a runner reaches NATS JetStream (--queue and the --nats-*
// settings): the daemon then also takes its workspace's patches from the
// stream a gateway publishes them to (see internal/natsrun). The zero
// value (no URLs) is no queue.
type Queue struct {
	// URLs are the NATS servers, tried in turn: nats://host:4222,
	// tls://host:4222; never with a user or password in them.
	URLs []string
	// Workspace is the name the gateway routes this workspace's patches
	// by (--workspace-name), ^[A-Za-z0-9_-]{1,64}$.
	Workspace string
	// User and PasswordFile authenticate with a user and password (the
	// password read from the file, never given on the command line);
	// Creds with a NATS credentials file (JWT and nkey seed), or an nkey
	// seed file, instead.
	User         string
	PasswordFile string
	Creds        string
	// CA is a PEM file of the CA that signed the servers' certificates
	// (for tls:// servers a system CA does not vouch for).
	CA string
	// MaxDeliver is how often a message is delivered without an outcome
	// before it becomes a dead letter; AckWait how long a delivery waits
	// for its ack (the runner says it is still working every AckWait/3).
	MaxDeliver int
	AckWait    time.Duration
}

// On reports whether a queue is configured.
func (q Queue) On() bool { return len(q.URLs) > 0 }

// Names of the queue's settings.
const (
	SettingQueue         = "queue"
	SettingWorkspaceName = "workspace-name"
	SettingMaxDeliver    = "max-deliver"
)

// workspaceName is what a workspace name may be: it is one token of a NATS
// subject (patchd.ws.<name>) and of a KV key.
// Checked by hand: as a package-level regexp, `^[A-Za-z0-9_-]{1,64}$`
// was compiled at every start of every patchd command (its 64-fold
// repetition: 860 allocations, ~0.9 ms, before main).
func workspaceName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseQueueURLs reads --queue: one NATS server URL or several separated
// by commas (the servers of one cluster). Each is nats://, tls://, ws://
// or wss:// with a host, and without a user or password: those belong in
// --nats-user and --nats-password-file, which no process list shows.
func ParseQueueURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || part == "none" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return nil, fmt.Errorf("must be a NATS URL like nats://host:4222, not %q", part)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("must be a nats://, tls://, ws:// or wss:// URL, not %q", u.Scheme+"://"+u.Host)
		}
		if u.User != nil {
			return nil, errors.New("must not hold a user or password (use --nats-user and --nats-password-file, or --nats-creds)")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("must be only a scheme, host and port, not %q", part)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out, nil
}

// CheckWorkspaceName checks a --workspace-name.
func CheckWorkspaceName(name string) error {
	if !workspaceName(name) {
		return fmt.Errorf("must be 1 to 64 letters, digits, '_' or '-', not %q", name)
	}
	return nil
}

// queueSettings are the runner's settings.
func queueSettings() []setting {
	path := func(set func(q *Queue, p string)) func(c *Config, v []string) error {
		return func(c *Config, v []string) error {
			p := last(v)
			if p != "" {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				p = abs
			}
			set(&c.Queue, p)
			return nil
		}
	}
	return []setting{
		{name: SettingQueue, def: "", format: text(func(c *Config) string { return strings.Join(c.Queue.URLs, ",") }),
			usage: "also take this workspace's patches from NATS JetStream at this URL (nats://host:4222; several, of one cluster, separated by commas), as a runner behind `patchd gateway`; needs --workspace-name",
			apply: func(c *Config, v []string) error {
				urls, err := ParseQueueURLs(last(v))
				c.Queue.URLs = urls
				return err
			}},
		{name: SettingWorkspaceName, def: "", format: text(func(c *Config) string { return c.Queue.Workspace }),
			usage: "the name the gateway routes this workspace's patches by (with --queue)",
			apply: func(c *Config, v []string) error {
				c.Queue.Workspace = last(v)
				if c.Queue.Workspace == "" {
					return nil
				}
				return CheckWorkspaceName(c.Queue.Workspace)
			}},
		{name: "nats-user", def: "", format: text(func(c *Config) string { return c.Queue.User }),
			usage: "the NATS user the runner connects as (with --nats-password-file)",
			apply: func(c *Config, v []string) error {
				c.Queue.User = last(v)
				return nil
			}},
		{name: "nats-password-file", def: "", format: text(func(c *Config) string { return c.Queue.PasswordFile }),
			usage: "a file holding the NATS user's password (its first line)",
			apply: path(func(q *Queue, p string) { q.PasswordFile = p })},
		{name: "nats-creds", def: "", format: text(func(c *Config) string { return c.Queue.Creds }),
			usage: "a NATS credentials file (JWT and nkey seed), or an nkey seed file as patchd gateway generates, the runner connects with instead of a user and password",
			apply: path(func(q *Queue, p string) { q.Creds = p })},
		{name: "nats-ca", def: "", format: text(func(c *Config) string { return c.Queue.CA }),
			usage: "a PEM file of the CA that signed the NATS servers' certificates",
			apply: path(func(q *Queue, p string) { q.CA = p })},
		{name: SettingMaxDeliver, def: "5", format: integer(func(c *Config) int { return c.Queue.MaxDeliver }),
			usage: "how many times a queued patch is delivered to the runner without an outcome before it becomes a dead letter",
			apply: func(c *Config, v []string) error {
				n, err := strconv.Atoi(last(v))
				if err != nil || n < 1 || n > 1000 {
					return fmt.Errorf("must be a number from 1 to 1000, not %q", last(v))
				}
				c.Queue.MaxDeliver = n
				return nil
			}},
		{name: "ack-wait", def: "30s", format: duration(func(c *Config) time.Duration { return c.Queue.AckWait }),
			usage: "how long NATS waits for the runner's word on a delivered patch before delivering it again (the runner says it is still working every third of it); refused patches are retried after a backoff from a thirtieth of it",
			apply: func(c *Config, v []string) error {
				d, err := parseDuration(last(v))
				if err == nil && d < 100*time.Millisecond {
					err = fmt.Errorf("must be at least 100ms, not %q", last(v))
				}
				c.Queue.AckWait = d
				return err
			}},
	}
}

// checkQueue checks the queue's settings together.
func (c *Config) checkQueue() error {
	q := c.Queue
	if !q.On() {
		// The other settings wait for a --queue (a config file may keep
		// them while the queue is off).
		return nil
	}
	if q.Workspace == "" {
		return fmt.Errorf("--%s needs --%s: the name the gateway routes this workspace's patches by", SettingQueue, SettingWorkspaceName)
	}
	if q.Creds != "" && (q.User != "" || q.PasswordFile != "") {
		return errors.New("--nats-creds and --nats-user/--nats-password-file are two ways to authenticate: give one")
	}
	if (q.User == "") != (q.PasswordFile == "") {
		return errors.New("--nats-user and --nats-password-file go together: give both or neither")
	}
	return nil
}
