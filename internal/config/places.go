package config

import (
	"fmt"

	"github.com/patchd/patchd/internal/fsutil"
)

// checkStateDir refuses a state dir that is the workspace or contains it,
// under any spelling: by resolved path, and by device and inode for what
// exists (a bind mount or another alias). Patches write anywhere in the
// workspace below its root, so they could then plant patchd's config file
// or replace its token, and no rule could tell those files from the
// workspace's own.
func (c *Config) checkStateDir() error {
	ws, sd := fsutil.Resolve(c.Workspace), fsutil.Resolve(c.StateDir)
	var why string
	switch {
	case ws == sd:
		why = "is the workspace %s itself"
	case fsutil.Within(ws, sd):
		why = "contains the workspace %s"
	case fsutil.SameAsOrAbove(c.StateDir, c.Workspace):
		why = "is the workspace %s, or one of its parents, under another name"
	default:
		return nil
	}
	return fmt.Errorf("--state-dir %s "+why+": patches could then write patchd's token and config file; "+
		"use a state dir inside the workspace (the default, <workspace>/.patchd) or outside it", c.StateDir, c.Workspace)
}
