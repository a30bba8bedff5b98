package patch

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// A tag must be a plain tag name: "refs/heads/master" made a tag that
// shadows the branch for every command that names it.
func TestTagNames(t *testing.T) {
	good := []string{"v1.2.3", "t1", "release/2026-12", "P8.13.22", "a_b", "x(1)", "v1.0-rc.1"}
	bad := []string{
		"refs/heads/master", "refs/tags/v1", "REFS/x", "-d", "--delete", "HEAD", "FETCH_HEAD", "@",
		".hidden", "a/.b", "a..b", "a.lock", "a/b.lock/c", "a//b", "a/", "/a", "a.", "a b", "a~1", "a^", "a:b",
		"a?", "a*", "a[b", "a\\b", "a@{1}", "a\x7fb", "a\tb", "", strings.Repeat("a", 129),
	}
	for _, tag := range good {
		if err := checkTag(tag); err != nil {
			t.Errorf("checkTag(%q) = %v, want nil", tag, err)
		}
	}
	for _, tag := range bad {
		if tag == "" {
			continue // no tag
		}
		err := checkTag(tag)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field() != "tag" {
			t.Errorf("checkTag(%q) = %v, want an error naming the field tag", tag, err)
		}
	}
	// What is accepted, git accepts as refs/tags/<name> too.
	if _, err := exec.LookPath("git"); err == nil {
		for _, tag := range good {
			if out, err := exec.Command("git", "check-ref-format", "refs/tags/"+tag).CombinedOutput(); err != nil {
				t.Errorf("git check-ref-format refs/tags/%s: %v %s", tag, err, out)
			}
		}
	}
	body := `{"id":"a","role":"r","target_file":"f","patch":{"pattern":"x","replacement":"y"},"tag":"refs/heads/master"}`
	if _, err := Parse([]byte(body)); err == nil || !strings.Contains(err.Error(), "tag") {
		t.Errorf("Parse with tag refs/heads/master = %v, want refused naming tag", err)
	}
}
