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

// TestStopMark: each MarkStop changes the value a standby compares, and a
// missing marker reads as empty.
func TestStopMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "patchd.stop")
	v0, err := StopMark(path)
	if err != nil || v0 != "" {
		t.Fatalf("StopMark with no marker = %q, %v; want empty", v0, err)
	}
	seen := map[string]bool{v0: true}
	for range 3 {
		if err := MarkStop(path); err != nil {
			t.Fatal(err)
		}
		v, err := StopMark(path)
		if err != nil || seen[v] {
			t.Fatalf("StopMark after MarkStop = %q, %v; want a new value", v, err)
		}
		seen[v] = true
	}
}
