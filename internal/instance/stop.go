package instance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/patchd/patchd/internal/fsutil"
)

// The stop marker tells standbys that `patchd stop` stopped the instance.
//
// Standbys are normally told over the control socket, but one that stands
// by at the moment of the stop may not have registered yet (or may be
// registering again after a restart). So the stopping daemon also rewrites
// the marker before it lets go of the lock: a standby reads the marker
// before it first tries the lock, and if the marker changed by the time it
// wins the lock, the stop was meant for it too and it stands down. A
// process that starts after the stop reads the new value and is not
// affected: the marker never blocks a new start.

// StopMark returns the marker's current value ("" when there is none).
func StopMark(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read stop marker: %w", err)
	}
	return string(data), nil
}

// MarkStop rewrites the marker with a new value, atomically.
func MarkStop(path string) error {
	b := make([]byte, 8)
	rand.Read(b)
	v := fmt.Sprintf("stopped by pid %d at %s, %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano), hex.EncodeToString(b))
	if err := fsutil.WriteFileAtomic(path, []byte(v), 0o600); err != nil {
		return fmt.Errorf("write stop marker: %w", err)
	}
	return nil
}
