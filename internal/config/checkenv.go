package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// checkEnvSpec validates an environment object and a list of names to
// pass, named envKey and passKey in its errors.
func checkEnvSpec(envKey, passKey string, env map[string]string, pass []string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if err := checkEnvName(k); err != nil {
			return fmt.Errorf("%s: %w", envKey, err)
		}
		if strings.ContainsRune(env[k], 0) {
			return fmt.Errorf("%s: %s: value holds a NUL byte", envKey, k)
		}
	}
	for _, k := range pass {
		if err := checkEnvName(k); err != nil {
			return fmt.Errorf("%s: %w", passKey, err)
		}
	}
	return nil
}

func checkEnvName(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("%q: not a variable name", k)
	}
	if strings.HasPrefix(k, "PATCHD_") {
		return fmt.Errorf("%s: patchd's own variables never reach a check", k)
	}
	if k == "TMPDIR" {
		return fmt.Errorf("TMPDIR: set by patchd to the check's private temporary directory")
	}
	return nil
}

// mergeEnv returns global overlaid with own (nil when both are empty).
func mergeEnv(global, own map[string]string) map[string]string {
	if len(global)+len(own) == 0 {
		return nil
	}
	out := maps.Clone(global)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, own)
	return out
}

// mergeNames returns the names of both lists, sorted, each once.
func mergeNames(global, own []string) []string {
	out := slices.Concat(global, own)
	slices.Sort(out)
	return slices.Compact(out)
}
