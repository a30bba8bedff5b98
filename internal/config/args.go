package config

import (
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Args renders c as the command-line flags that Load turns back into c:
// every setting of the table whose value differs from its default, however
// it was given (flag, PATCHD_* variable or config file), and those the
// table pins even at their default; paths absolute, in the table's order.
// Then --config names the config file read, if any, since its checks are
// read only from there. A setting whose table entry has a notArgs reason is
// left out. `patchd service` runs the daemon with these flags, so that the
// supervisor's patchd, which has neither the shell's environment nor its
// working directory, is the one configured here.
func (c *Config) Args() []string {
	def := &Config{}
	for _, s := range settings() {
		// A default always applies; a setting whose default did not would
		// fail every Load.
		_ = s.apply(def, splitList(s, s.def))
	}
	var args []string
	for _, s := range settings() {
		if s.notArgs != "" || s.format == nil {
			continue
		}
		vals := s.format(c)
		if !s.pin && slices.Equal(vals, s.format(def)) {
			continue
		}
		if s.def == "false" && slices.Equal(vals, []string{"true"}) {
			args = append(args, "--"+s.name)
			continue
		}
		for _, v := range vals {
			if s.def == "false" || s.def == "true" {
				// A flag without value takes its value only after '='.
				args = append(args, "--"+s.name+"="+v)
			} else {
				args = append(args, "--"+s.name, v)
			}
		}
	}
	if c.ConfigFile != "" {
		args = append(args, "--config", c.ConfigFile)
	}
	return args
}

// Formats of the table's values, the inverses of their parsers.

func text(get func(c *Config) string) func(c *Config) []string {
	return func(c *Config) []string { return []string{get(c)} }
}

func boolean(get func(c *Config) bool) func(c *Config) []string {
	return func(c *Config) []string { return []string{strconv.FormatBool(get(c))} }
}

func integer[N int | int64](get func(c *Config) N) func(c *Config) []string {
	return func(c *Config) []string { return []string{strconv.FormatInt(int64(get(c)), 10)} }
}

// duration renders whole seconds as such (60s, not 1m0s), the rest as
// time.Duration does (250ms).
func duration(get func(c *Config) time.Duration) func(c *Config) []string {
	return func(c *Config) []string {
		d := get(c)
		if d%time.Second == 0 {
			return []string{strconv.FormatInt(int64(d/time.Second), 10) + "s"}
		}
		return []string{d.String()}
	}
}

// size renders a number of bytes in the largest binary unit that divides
// it, as parseSize reads it: 64MiB, not 67108864.
func size(get func(c *Config) int64) func(c *Config) []string {
	return func(c *Config) []string {
		n := get(c)
		for _, u := range []struct {
			suffix string
			mult   int64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if n%u.mult == 0 {
				return []string{strconv.FormatInt(n/u.mult, 10) + u.suffix}
			}
		}
		return []string{strconv.FormatInt(n, 10)}
	}
}

// formatPorts renders the fallback ports; none is "none", which differs
// from the default list.
func formatPorts(c *Config) []string {
	if len(c.FallbackPorts) == 0 {
		return []string{"none"}
	}
	out := make([]string, len(c.FallbackPorts))
	for i, p := range c.FallbackPorts {
		out[i] = strconv.Itoa(p)
	}
	return out
}

// formatSummaries leaves out the summaries dir that follows the state dir.
func formatSummaries(c *Config) []string {
	if c.SummariesDir == filepath.Join(c.StateDir, "summaries") {
		return []string{""}
	}
	return []string{c.SummariesDir}
}
