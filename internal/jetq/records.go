package jetq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/patchd/patchd/internal/api"
)

// WorkspaceRecord is a value of BucketWorkspaces: a runner puts it when it
// starts, every 10 s and after events (debounced). A workspace exists for
// the gateway when it has a record (or the gateway lists it).
type WorkspaceRecord struct {
	Name      string     `json:"name"`
	Runner    RunnerInfo `json:"runner"`
	Status    api.Status `json:"status"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// RunnerInfo says which runner serves a workspace.
type RunnerInfo struct {
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	Instance string `json:"instance"`
}

// EncodeView is the value of a patch's view in BucketPatches: v's JSON
// with its texts cut as api.FitPatch cuts an answer about one patch (the
// diff to its first api.DiffPageChars), and without the diff if that
// still passes MaxViewBytes (a note says so).
func EncodeView(v api.PatchView) ([]byte, error) {
	api.FitPatch(&v, 0)
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode patch view %s: %w", v.ID, err)
	}
	if len(b) <= MaxViewBytes {
		return b, nil
	}
	v.Diff, v.DiffOffset, v.DiffNext = "", 0, 0
	v.Attempts, v.Files = nil, nil
	v.Notes = append(v.Notes[:0:0], "the diff, files and attempts are left out: the view did not fit the bucket's value limit")
	b, err = json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode patch view %s: %w", v.ID, err)
	}
	return b, nil
}

// DecodeView reads a value of BucketPatches.
func DecodeView(b []byte) (api.PatchView, error) {
	var v api.PatchView
	if err := json.Unmarshal(b, &v); err != nil {
		return api.PatchView{}, fmt.Errorf("decode patch view: %w", err)
	}
	return v, nil
}
