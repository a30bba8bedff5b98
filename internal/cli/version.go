package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/patchd/patchd/internal/version"
)

// runVersion is `patchd version`.
func runVersion(ctx context.Context, env *Env, args []string) error {
	if _, _, err := parse(env, "version", args, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "patchd %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
