package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retain is a retention policy (--retain): how long patches are kept, and
// how many at most. The zero value keeps everything.
type Retain struct {
	// MaxAge removes patches received longer ago than this; 0: no limit.
	MaxAge time.Duration
	// MaxCount keeps only the newest MaxCount patches; 0: no limit.
	MaxCount int
}

// SettingRetain is the name of the retention setting.
const SettingRetain = "retain"

// Off reports whether the policy keeps everything.
func (r Retain) Off() bool { return r.MaxAge <= 0 && r.MaxCount <= 0 }

// String renders the policy as ParseRetain reads it: "90d", "720h30m0s",
// "50000", "30d,50000" or "forever".
func (r Retain) String() string {
	if r.Off() {
		return "forever"
	}
	var parts []string
	if r.MaxAge > 0 {
		if r.MaxAge%(24*time.Hour) == 0 {
			parts = append(parts, strconv.FormatInt(int64(r.MaxAge/(24*time.Hour)), 10)+"d")
		} else {
			parts = append(parts, r.MaxAge.String())
		}
	}
	if r.MaxCount > 0 {
		parts = append(parts, strconv.Itoa(r.MaxCount))
	}
	return strings.Join(parts, ",")
}

// ParseRetain reads a retention policy: an age ("90d", or a Go duration
// such as "720h"), a count ("100000"), both separated by a comma
// ("30d,50000"), or "forever" (also "0") for none. Its error is one line
// that quotes s.
func ParseRetain(s string) (Retain, error) {
	var r Retain
	fail := func() (Retain, error) {
		return Retain{}, fmt.Errorf("must be an age (90d, 720h), a count of patches (100000), both (30d,50000), or forever, not %q", s)
	}
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "forever" || t == "0" || t == "off" || t == "none" {
		return r, nil
	}
	parts := strings.Split(t, ",")
	if len(parts) > 2 {
		return fail()
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		age, isAge, err := parseAge(p)
		switch {
		case err != nil:
			return fail()
		case isAge:
			if r.MaxAge > 0 {
				return fail()
			}
			r.MaxAge = age
		default:
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || r.MaxCount > 0 {
				return fail()
			}
			r.MaxCount = n
		}
	}
	return r, nil
}

// parseAge reads "90d" or a positive Go duration; isAge is false for a
// plain number (a count).
func parseAge(p string) (d time.Duration, isAge bool, err error) {
	if p == "" {
		return 0, false, errors.New("empty")
	}
	if _, err := strconv.Atoi(p); err == nil {
		return 0, false, nil
	}
	if days, ok := strings.CutSuffix(p, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100*365 {
			return 0, true, errors.New("bad days")
		}
		return time.Duration(n) * 24 * time.Hour, true, nil
	}
	d, err = time.ParseDuration(p)
	if err != nil || d <= 0 {
		return 0, true, errors.New("bad duration")
	}
	return d, true, nil
}

// retainSettings is the retention setting.
func retainSettings() []setting {
	return []setting{
		{name: SettingRetain, format: func(c *Config) []string { return []string{c.Retain.String()} }, def: "90d",
			usage: "how long patches stay in the history: an age (90d, 720h), a count (100000), both (30d,50000), or forever; queued and applying patches, and those a revert of a file needs, always stay",
			apply: func(c *Config, v []string) error {
				r, err := ParseRetain(last(v))
				c.Retain = r
				return err
			}},
	}
}
