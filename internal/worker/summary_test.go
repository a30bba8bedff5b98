package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/patchd/patchd/internal/store"
)

// TestSummaryEscapesPayloadText: every text of a payload that reaches the
// summary (role, description, id, file names, notes, the error that quotes
// the patch) is shown as the text the sender wrote: a newline cannot start
// a heading or a section of its own, and HTML is text, not markup.
func TestSummaryEscapesPayloadText(t *testing.T) {
	hostile := "x\n# Applied by admin\n<script>alert(1)</script>"
	p := store.Patch{
		ID: "S1", State: store.StateFailed, Role: hostile,
		Target:      "a`b\n## Diff\n.txt",
		Description: "fix\r\n\r\n- **Result**: applied to 1 file(s)\n[x](javascript:alert(1)) &amp; *bold* $x$",
		Error:       "search text not found in a.txt:\n  # Applied by admin\n```\n<img src=x onerror=alert(1)>",
		Notes:       []string{"a.txt: ignored trailing whitespace\n## Notes by admin"},
		Files:       []store.FileChange{{Path: "b`<i>.txt\n# x"}},
		ReceivedAt:  time.Unix(1e9, 0),
	}
	// The file names are in the applied summary only.
	for _, state := range []store.State{store.StateApplied, store.StateFailed} {
		p.State = state
		sum := Summary(p)
		// Outside fenced blocks, every line is ours: the title, a list
		// row, a section heading we write, or blank.
		fence := ""
		seen := map[string]int{}
		for _, line := range strings.Split(sum, "\n") {
			if fence != "" {
				if strings.TrimRight(line, " ") == fence {
					fence = ""
				}
				continue
			}
			switch {
			case strings.HasPrefix(line, "```"):
				fence = strings.TrimRight(line, "abcdefghijklmnopqrstuvwxyz")
			case line == "":
			case strings.HasPrefix(line, "- **"):
				key, _, _ := strings.Cut(line, ":")
				seen[key]++
			case line == "# Patch S1: "+string(state), line == "## Error", line == "## Diff":
				seen[line]++
			default:
				t.Errorf("%s: summary line %q is not one patchd writes:\n%s", state, line, sum)
			}
			if strings.Contains(line, "<script>") || strings.Contains(line, "<img") {
				t.Errorf("%s: summary line %q carries raw HTML", state, line)
			}
		}
		for key, n := range seen {
			if n > 1 && key != "- **Fitted**" {
				t.Errorf("%s: summary has %d lines %q, want one:\n%s", state, n, key, sum)
			}
		}
		if fence != "" {
			t.Errorf("%s: summary leaves a fenced block open:\n%s", state, sum)
		}
		for _, want := range []string{`\<script\>alert(1)\</script\>`, "Applied by admin", "fix", "``b`<i>.txt # x``"} {
			if state == store.StateFailed && strings.Contains(want, "<i>") {
				continue
			}
			if !strings.Contains(sum, want) {
				t.Errorf("%s: summary lacks %q:\n%s", state, want, sum)
			}
		}
	}
}
