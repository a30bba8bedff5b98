package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/patchd/patchd/internal/api"
)

// Lengths past which a message's texts are cut: the payload is the
// sender's, and a receiver's channel is no place for a megabyte.
const (
	maxDescription = 300
	maxError       = 1000
	maxFiles       = 10
	maxPathLen     = 200
)

// Generic is the JSON body of a generic notification. The receiver may
// recognise a message it has seen by EventID (or the X-Patchd-Delivery
// header): a message is resent when the daemon stopped between the
// receiver's answer and its record of it.
type Generic struct {
	Event       string    `json:"event"`    // patch.applied, patch.failed, patch.reverted, patch.dropped
	EventID     uint64    `json:"event_id"` // the event's number (GET /events, events.jsonl)
	ID          string    `json:"id"`       // the patch's id
	State       string    `json:"state"`
	Error       string    `json:"error,omitempty"`
	Code        string    `json:"code,omitempty"`
	Time        time.Time `json:"time"` // when the event was committed
	Description string    `json:"description,omitempty"`
	Role        string    `json:"role,omitempty"`
	TargetFile  string    `json:"target_file,omitempty"`
	Files       []string  `json:"files,omitempty"`
	Attempt     int       `json:"attempt,omitempty"`
}

// outcome is the event a receiver filters on (config.NotifyApplied, …),
// "" for an event no receiver is told of.
func outcome(event string) string {
	switch event {
	case "patch.applied":
		return "applied"
	case "patch.failed", "patch.dropped":
		return "failed"
	case "patch.reverted":
		return "reverted"
	}
	return ""
}

// generic renders the generic message of e; v is the patch as Get read it
// (zero when it could not be read).
func generic(e api.Event, v api.PatchView) ([]byte, error) {
	g := Generic{
		Event: e.Event, EventID: e.EventID, ID: e.ID, State: e.State,
		Error: cut(e.Error, maxError), Code: e.Code, Time: e.Time.UTC(),
		Description: cut(v.Description, maxDescription), Role: v.Role, TargetFile: v.TargetFile,
		Files: files(v), Attempt: v.Attempt,
	}
	return json.Marshal(g)
}

// files lists at most maxFiles of the paths the patch changed.
func files(v api.PatchView) []string {
	var out []string
	for i, f := range v.Files {
		if i == maxFiles {
			out = append(out, fmt.Sprintf("… and %d more", len(v.Files)-maxFiles))
			break
		}
		out = append(out, cut(f.Path, maxPathLen))
	}
	if out == nil && v.TargetFile != "" {
		out = []string{cut(v.TargetFile, maxPathLen)}
	}
	return out
}

// slack renders the Slack-shaped message of e: a text (what a
// notification shows), and an attachment with the colour and the blocks.
// Every text that came from the patch is escaped (slackEscape). Discord's
// Slack-compatible endpoint takes the same shape, with a hex colour.
func slack(e api.Event, v api.PatchView, discord bool) ([]byte, error) {
	verb, color := "Patch "+outcome(e.Event), "good"
	if e.Event == "patch.dropped" {
		verb = "Patch dropped"
	}
	if outcome(e.Event) == "failed" {
		color = "danger"
	}
	if discord {
		color = map[string]string{"good": "#2eb886", "danger": "#a30200"}[color]
	}
	id := slackEscape(cut(e.ID, 128))
	text := fmt.Sprintf("%s: `%s`", verb, id)
	if d := v.Description; d != "" {
		text += " — " + slackEscape(cut(oneLine(d), maxDescription))
	}
	detail := fmt.Sprintf("*State:* %s", slackEscape(e.State))
	if fs := files(v); len(fs) > 0 {
		for i := range fs {
			fs[i] = "`" + slackEscape(strings.ReplaceAll(fs[i], "`", "'")) + "`"
		}
		detail += "\n*Files:* " + strings.Join(fs, ", ")
	}
	if e.Code != "" {
		detail += "\n*Code:* `" + slackEscape(e.Code) + "`"
	}
	blocks := []any{
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}},
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": detail}},
	}
	if e.Error != "" {
		msg := strings.ReplaceAll(cut(e.Error, maxError), "```", "'''")
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "```" + slackEscape(msg) + "```"}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{
		map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("patchd · event %d · %s", e.EventID, e.Time.UTC().Format(time.RFC3339))},
	}})
	msg := map[string]any{
		"text":        text,
		"attachments": []any{map[string]any{"color": color, "fallback": text, "blocks": blocks}},
	}
	if discord {
		// Discord reads "text" as its content and attachments' fields.
		msg["attachments"] = []any{map[string]any{"color": color, "fallback": text, "text": detail}}
	}
	return json.Marshal(msg)
}

// slackEscape makes hostile text inert in Slack's mrkdwn: &, < and > are
// its control characters (<!channel>, <@U123>, <https://x|y> all need a
// '<'), escaped as Slack documents; and a mention written out ("@here",
// "@everyone", which Discord's endpoint would ping) gets a zero-width
// joiner after its '@'.
func slackEscape(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return strings.ReplaceAll(s, "@", "@\u2060")
}

// oneLine turns line breaks into spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cut shortens s to at most n bytes (on a rune boundary), with "…" when
// it cut anything, and drops invalid UTF-8.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
