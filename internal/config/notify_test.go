package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestParseNotify: the kind is found from the URL, options after # are
// read, and a bad value is refused without quoting the URL.
func TestParseNotify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Notify
	}{
		{"https://hooks.slack.com/services/T0/B0/xyz", Notify{URL: "https://hooks.slack.com/services/T0/B0/xyz", Kind: NotifySlack, Events: []string{NotifyFailed}}},
		{"https://discord.com/api/webhooks/1/abc/slack#events=all", Notify{URL: "https://discord.com/api/webhooks/1/abc/slack", Kind: NotifyDiscord, Events: []string{NotifyApplied, NotifyFailed, NotifyReverted}}},
		{"https://discord.com/api/webhooks/1/abc", Notify{URL: "https://discord.com/api/webhooks/1/abc", Kind: NotifyGeneric, Events: []string{NotifyFailed}}},
		{"http://127.0.0.1:9/x#events=applied,failed&secret=k", Notify{URL: "http://127.0.0.1:9/x", Kind: NotifyGeneric, Events: []string{NotifyApplied, NotifyFailed}, Secret: "k"}},
		{"http://127.0.0.1:9/x#events=failed+applied", Notify{URL: "http://127.0.0.1:9/x", Kind: NotifyGeneric, Events: []string{NotifyApplied, NotifyFailed}}},
		{"http://127.0.0.1:9/x#kind=slack&events=reverted", Notify{URL: "http://127.0.0.1:9/x", Kind: NotifySlack, Events: []string{NotifyReverted}}},
	} {
		got, err := ParseNotify(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNotify(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		back, err := ParseNotify(formatNotify(got))
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("ParseNotify(formatNotify(%+v)) = %+v, %v", got, back, err)
		}
	}
	for _, bad := range []string{"ftp://h/secretpath", "https:///secretpath", "https://u:p@h/secretpath", "https://h/secretpath#events=sometimes", "https://h/secretpath#kind=teams", "https://h/secretpath#colour=red", "https://hooks.slack.com/secretpath#secret=k"} {
		_, err := ParseNotify(bad)
		if err == nil {
			t.Errorf("ParseNotify(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "secretpath") {
			t.Errorf("ParseNotify(%q) = %v: quotes the URL", bad, err)
		}
	}
	n, _ := ParseNotify("https://hooks.slack.com/services/T0/B0/xyz")
	if r := n.Redacted(); strings.Contains(r, "xyz") || strings.Contains(r, "T0") || !strings.HasPrefix(r, "https://hooks.slack.com/…") {
		t.Errorf("Redacted() = %q", r)
	}
}

// TestNotifyFile: the config file's "notify" takes URLs and objects with
// per-receiver options; a flag replaces the file's list.
func TestNotifyFile(t *testing.T) {
	ws := t.TempDir()
	sd := filepath.Join(ws, ".patchd")
	os.MkdirAll(sd, 0o700)
	file := `{"notify": ["https://hooks.slack.com/services/a", {"url": "https://example.com/h", "events": ["applied", "failed"], "secret": "k"}]}`
	os.WriteFile(filepath.Join(sd, "config.json"), []byte(file), 0o600)
	c, err := load(t, []string{"--workspace", ws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Notify{
		{URL: "https://hooks.slack.com/services/a", Kind: NotifySlack, Events: []string{NotifyFailed}},
		{URL: "https://example.com/h", Kind: NotifyGeneric, Events: []string{NotifyApplied, NotifyFailed}, Secret: "k"},
	}
	if !reflect.DeepEqual(c.Notify, want) {
		t.Errorf("Notify = %+v, want %+v", c.Notify, want)
	}
	if strings.Contains(strings.Join(c.Args(), " "), "example.com") {
		t.Errorf("Args() = %q carries a receiver", c.Args())
	}
	os.WriteFile(filepath.Join(sd, "config.json"), []byte(`{"notify": [{"url": "https://example.com/h", "events": "sometimes"}]}`), 0o600)
	if _, err := load(t, []string{"--workspace", ws}, nil); err == nil || !strings.Contains(err.Error(), "--notify") {
		t.Errorf("a bad events list: %v", err)
	}
}
