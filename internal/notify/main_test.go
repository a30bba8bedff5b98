package notify

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// envChild makes the test binary act as a supervised child instead of
// running tests, so tests can put a real process under a real parent.
const envChild = "PATCHD_NOTIFY_TEST_CHILD"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(envChild); mode {
	case "":
		os.Exit(m.Run())
	case "pm2-ready":
		os.Exit(childPM2Ready())
	case "pm2-node":
		os.Exit(childPM2Node())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envChild, mode)
		os.Exit(2)
	}
}

// childPM2Ready sends "ready" and exits.
func childPM2Ready() int {
	p := NewPM2()
	if !p.Enabled() {
		fmt.Fprintf(os.Stderr, "pm2 not enabled: %v\n", p.Err())
		return 2
	}
	if err := p.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childReport is what childPM2Node prints, prefixed by "CHILD ", about the
// channel its Node parent gave it.
type childReport struct {
	ChannelFD     string `json:"channel_fd"`
	Serialization string `json:"serialization"`
	Enabled       bool   `json:"enabled"`
	Err           string `json:"err,omitempty"`
}

// childPM2Node reports its channel, sends "ready", and exits 0 once its
// parent answers "shutdown" (3 if it never does).
func childPM2Node() int {
	rep := childReport{
		ChannelFD:     os.Getenv(EnvNodeChannelFD),
		Serialization: os.Getenv(EnvNodeChannelSerialization),
	}
	p := NewPM2()
	defer p.Close()
	rep.Enabled = p.Enabled()
	if err := p.Err(); err != nil {
		rep.Err = err.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("CHILD %s\n", b)
	if err := p.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	select {
	case <-p.ShutdownRequested():
		fmt.Println("SHUTDOWN requested")
		return 0
	case <-time.After(20 * time.Second):
		return 3
	}
}
