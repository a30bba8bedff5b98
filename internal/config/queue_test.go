package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestQueueSettings: the runner's settings from flags, the environment and
// the config file, and the refusals, each naming the setting.
func TestQueueSettings(t *testing.T) {
	ws := t.TempDir()
	c, err := load(t, []string{"--workspace", ws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.On() || c.Queue.MaxDeliver != 5 || c.Queue.AckWait != 30*time.Second {
		t.Errorf("default Queue = %+v, want off, MaxDeliver 5, AckWait 30s", c.Queue)
	}
	c, err = load(t, []string{"--workspace", ws, "--queue", "nats://a:4222, tls://b:4443/", "--nats-user", "u", "--nats-password-file", "pw"},
		map[string]string{"PATCHD_WORKSPACE_NAME": "api-server", "PATCHD_MAX_DELIVER": "3", "PATCHD_ACK_WAIT": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	want := Queue{URLs: []string{"nats://a:4222", "tls://b:4443"}, Workspace: "api-server", User: "u", PasswordFile: filepath.Join(mustWd(t), "pw"), MaxDeliver: 3, AckWait: 2 * time.Second}
	if !reflect.DeepEqual(c.Queue, want) {
		t.Errorf("Queue = %+v, want %+v", c.Queue, want)
	}

	sd := filepath.Join(ws, ".patchd")
	if err := os.MkdirAll(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, "config.json"), []byte(`{"queue": "nats://q:4222", "workspace-name": "w1", "nats-creds": "/etc/patchd/r.creds", "nats-ca": "/etc/patchd/ca.pem"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = load(t, []string{"--workspace", ws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Queue; q.Workspace != "w1" || q.Creds != "/etc/patchd/r.creds" || q.CA != "/etc/patchd/ca.pem" || q.URLs[0] != "nats://q:4222" {
		t.Errorf("Queue from the file = %+v", q)
	}
	os.Remove(filepath.Join(sd, "config.json"))

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--queue", "nats://h:4222"}, []string{"--queue", "--workspace-name"}},
		{[]string{"--queue", "http://h:4222", "--workspace-name", "w"}, []string{"--queue", "nats://"}},
		{[]string{"--queue", "nats://u:secret@h:4222", "--workspace-name", "w"}, []string{"--queue", "--nats-user"}},
		{[]string{"--queue", "nats://h:4222", "--workspace-name", "a.b"}, []string{"--workspace-name", `"a.b"`}},
		{[]string{"--queue", "nats://h:4222", "--workspace-name", "w", "--nats-user", "u"}, []string{"--nats-user", "--nats-password-file"}},
		{[]string{"--queue", "nats://h:4222", "--workspace-name", "w", "--nats-creds", "c", "--nats-user", "u", "--nats-password-file", "p"}, []string{"--nats-creds", "--nats-user"}},
		{[]string{"--max-deliver", "0"}, []string{"--max-deliver"}},
		{[]string{"--ack-wait", "10ms"}, []string{"--ack-wait", "100ms"}},
	} {
		_, err := load(t, append([]string{"--workspace", ws}, tt.args...), nil)
		if err == nil {
			t.Errorf("Load(%q) = nil error, want one naming %q", tt.args, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%q) = %v, want it to name %s", tt.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Load(%q) = %v: it shows the password", tt.args, err)
		}
	}
}

func mustWd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestWorkspaceName: the hand-written check takes exactly what
// `^[A-Za-z0-9_-]{1,64}$` matches.
func TestWorkspaceName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	names := []string{"", "w", "w1", "api-server", "a_b-C9", strings.Repeat("a", 64), strings.Repeat("a", 65),
		"a.b", "a b", "a*", "a>", "é", "a\n", "\x00", "-", "_"}
	for c := 0; c < 256; c++ {
		names = append(names, "x"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, n := range names {
		if got, want := workspaceName(n), re.MatchString(n); got != want {
			t.Errorf("workspaceName(%q) = %v, the regexp %v", n, got, want)
		}
	}
}
