// Package patch understands the patch blocks that agents post to patchd's
// webhook: it parses and validates a block, computes the new content of the
// target file, and renders the change as a unified diff for summaries and
// review.
//
// Everything here is a pure function of its arguments. Reading and writing
// the workspace, path confinement and durability belong to the workspace and
// worker packages, so that this package can be tested and fuzzed without a
// file system.
package patch
