package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/patchd/patchd/internal/fsutil"
)

// checkRootWorkspace refuses the root of the file system as the workspace,
// under any spelling, unless AllowRootWorkspace: every file of the machine
// would be a patch's to write.
func (c *Config) checkRootWorkspace() error {
	ws := fsutil.Resolve(c.Workspace)
	if c.AllowRootWorkspace || (filepath.Dir(ws) != ws && !fsutil.SameAsOrAbove(c.Workspace, filepath.VolumeName(ws)+string(filepath.Separator))) {
		return nil
	}
	return fmt.Errorf("--workspace %s is the root of the file system: patches could write any file on the machine; "+
		"name the project's directory, or, if the whole file system is really meant, pass --allow-root-workspace "+
		"(or set PATCHD_ALLOW_ROOT_WORKSPACE=true, or \"allow-root-workspace\": true in the config file)", c.Workspace)
}

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

// readPrivate reads the config file if no other user could have written
// it: its owner is patchd's user (or root) and neither group nor others
// may write it; the default one, in the state dir, also needs the state
// dir to be so. What is read is the file that was checked (one open). A
// missing file is nil data, an error only when it was named explicitly.
func readPrivate(path string, explicit bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if err := fsutil.CheckPrivate("config file", path, fi); err != nil {
		return nil, err
	}
	if !explicit {
		dir := filepath.Dir(path)
		if di, err := os.Stat(dir); err == nil {
			if err := fsutil.CheckPrivate("state dir", dir, di); err != nil {
				return nil, err
			}
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
