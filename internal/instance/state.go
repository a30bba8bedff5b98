package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
)

// State is what the running instance publishes in <state>/patchd.json once
// its port is bound, so that every client finds it.
type State struct {
	PID        int       `json:"pid"`
	Address    string    `json:"address"`
	Port       int       `json:"port"`
	InstanceID string    `json:"instance_id"`
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	Workspace  string    `json:"workspace"`
	StateDir   string    `json:"state_dir"`
}

// WriteState replaces the state file atomically.
func WriteState(path string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// ReadState reads the state file. It says what the last instance published;
// only a held lock says that instance still runs.
func ReadState(path string) (State, error) {
	var s State
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read state %s: %w", path, err)
	}
	return s, nil
}
