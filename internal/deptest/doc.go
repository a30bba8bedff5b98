// Package deptest holds no code. Its test fails the build when a package
// imports what its room may not (ARCHITECTURE.md): the lower packages
// (store, worker, patch, workspace) no transport, patch no file system,
// api nothing but the standard library. It reads the import graph as the
// go command builds it (go list -deps), so an import through any number
// of packages in between counts, on each platform the daemon runs on.
package deptest
