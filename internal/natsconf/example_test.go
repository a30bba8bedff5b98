package natsconf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/scale-out/nats.conf.example")

// exampleFile is the rendered cluster configuration the README shows.
var exampleFile = filepath.Join("..", "..", "docs", "scale-out", "nats.conf.example")

// TestScaleOutExample: docs/scale-out/nats.conf.example is what
// `patchd gateway --print-nats-config --workspaces api,web --nats-listen
// 0.0.0.0:4222 --nats-store /data/jetstream --nats-routes
// n1:6222,n2:6222,n3:6222` prints, its secrets replaced (go test
// -run TestScaleOutExample -update rewrites it).
func TestScaleOutExample(t *testing.T) {
	m, err := Generate(Password, []string{"api", "web"})
	if err != nil {
		t.Fatal(err)
	}
	srv := ClusterNode("0.0.0.0:4222", "/data/jetstream", []string{"n1:6222", "n2:6222", "n3:6222"})
	srv.BcryptCost = 4
	var b bytes.Buffer
	if err := m.Render(&b, srv); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	hashes := regexp.MustCompile(`user: "([^"]+)"\n(\s+)password: "\$2a\$[^"]+"`)
	got = hashes.ReplaceAllString(got, `user: "$1"`+"\n"+`${2}password: "<bcrypt hash of $1's password>"`)
	got = strings.ReplaceAll(got, m.RoutePassword, "<route password>")
	if *update {
		if err := os.WriteFile(exampleFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s is not what natsconf renders (go test ./internal/natsconf -run TestScaleOutExample -update):\n%s", exampleFile, got)
	}
}
