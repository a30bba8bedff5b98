package instance

import (
	"path/filepath"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchd.json")
	want := State{PID: 42, Address: "127.0.0.1:5555", Port: 5555, InstanceID: "abc", Version: "1",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Workspace: "/w", StateDir: "/w/.patchd"}
	if err := WriteState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ReadState = %+v, want %+v", got, want)
	}
}
