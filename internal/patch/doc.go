// Package patch understands the patch blocks that agents post to patchd's
// webhook: it parses and validates a block, plans every file change it
// makes in memory (Block.Plan), and renders changes as unified diffs for
// summaries and review.
//
// Everything here is a pure function of its arguments. Reading and writing
// the workspace, path confinement and durability belong to the workspace and
// worker packages, so that this package can be tested and fuzzed without a
// file system.
//
// # Formats
//
// A block's "patch" is one edit; its format is told by its members. A block
// may instead hold a list of such edits, applied in order as one
// transaction: "edits", or "patch" itself as an array or as
// {"edits": [...]} (the shapes agents nest it in). Each element names its
// own "target_file" where it needs one; the default is the list's
// ("patch.target_file" beside "patch.edits") or else the block's. A block
// holds one list: "edits" beside a "patch" is refused, naming both.
// target_file is required only by the single-file formats, regex and
// search/replace.
//
//   - {"pattern", "replacement"[, "expand"]}: the seed's regex edit, as
//     before: every match of an RE2 pattern is replaced; none is an error.
//   - {"search", "replace"[, "all"]}: exact text replacement. The search text
//     must occur exactly once, or "all": true replaces every occurrence.
//     The replacement takes the file's line endings, and ends with a
//     newline exactly when the search text does. An empty search creates
//     the file (or fills an empty one), as aider does. Claude's Edit tool's
//     names, {"old_string", "new_string"[, "replace_all"]}, mean the same
//     and are taken as synonyms (not mixed with patchd's).
//   - {"diff": "..."}: a unified diff, git-style or plain, of one or more
//     files: changes, creations (--- /dev/null, "new file mode"), deletions
//     (+++ /dev/null, "deleted file mode"), renames ("rename from/to", with
//     or without hunks). a/ and b/ prefixes are stripped; "index" and
//     similarity lines are ignored; binary patches and copies are refused.
//     A created file gets its "new file mode" (0755 or 0644, Change.Mode);
//     an existing file's mode is never changed: a mode change among other
//     changes is noted, a diff that only changes a mode is refused. A hunk
//     that only adds lines, without context, applies only at the end of
//     the file or to an empty one, as git apply has it. Hunks without file
//     headers apply to target_file.
//   - {"apply_patch": "*** Begin Patch ... *** End Patch"}: the format of
//     OpenAI's apply_patch tool: Add File (lines prefixed +), Delete File,
//     Update File with an optional Move to, hunks introduced by "@@" or
//     "@@ <anchor line>" (several anchor lines narrow step by step: a class,
//     then a method), and "*** End of File" for a hunk that ends the file.
//     As in Codex, the reference, every updated file ends with a newline,
//     and a hunk that only adds lines goes to the end of the file (one with
//     an anchor or a line number elsewhere is refused).
//   - {"text": "..."}: aider SEARCH/REPLACE edit blocks, each a file name
//     on the line before "<<<<<<< SEARCH", the lines to find, "=======",
//     the lines to put in their place and ">>>>>>> REPLACE" (5 to 9 marker
//     characters). Each block is a search/replace edit of whole lines; a
//     block without a file name takes the previous block's (the first,
//     target_file). An empty SEARCH part creates a missing or empty file,
//     as aider's prompts teach; on a file with content it is refused
//     (aider's code appends there, which silently doubles a file an agent
//     believed new). Each block counts one against ParseOptions.MaxEdits.
//
// A "patch" (or an element of a list) given as a bare string is accepted
// when it is clearly a unified diff, an apply_patch text or aider edit
// blocks. What cannot be read is refused saying what was expected: the
// forms and their members, or, for a member under another name ("find",
// "oldText", "path", "file_path"), the name patchd takes instead.
//
// # Matching
//
// The text an edit expects (a search text; a hunk's context and removed
// lines) is looked for exactly first, then line by line ignoring trailing
// whitespace, then also reading typographic quotes, dashes and non-breaking
// spaces as ASCII (as OpenAI's apply_patch does), then with a uniform
// indentation offset, then comparing indentation by width (a file indented
// with tabs, a patch with spaces).
// Line endings never count: a CRLF file matches an LF patch and stays CRLF,
// and an LF file stays LF under a CRLF patch; the line endings of a patch
// text never reach a file that has its own. A file a patch creates (or an
// empty one it fills) is CRLF when every line the patch gives it ends with
// "\r\n", LF otherwise (an apply_patch Add File is always LF).
// The first level that finds the text decides; when indentation was
// shifted, the added lines are re-indented the same way (in the file's
// style). Context lines keep the file's version of themselves.
//
// A search text must match in exactly one place (or "all"). A hunk (of a
// diff or an apply_patch) that matches in one place applies there; where
// it matches in several, the places before the previous hunk of the file
// are set aside if any is left (hunks come in the file's order), then the
// one nearest to where its line numbers put it (shifted by how far the
// previous hunk landed from its own) wins; the change's notes say so. Two
// places equally near, or several without line numbers, are refused. An
// apply_patch @@ anchor must be unique the same way, and the hunk then
// takes the first match after it. Every
// failure to find a text, or finding it in several places, is a
// *MatchError whose message quotes the text, shows the closest lines of
// the file with their numbers and a similarity, lists the places of an
// ambiguous text, and says when the edit seems to have been applied before
// or elides lines with "...".
//
// A file's final newline is kept as it is unless a diff's "\ No newline at
// end of file" markers say it changes (the marker on one side only), or
// an apply_patch updates the file (it then ends with one, as in Codex).
//
// # Leniency
//
// Agents' diffs are often slightly malformed; what can be repaired without
// guessing the change is repaired, and noted in Change.Notes:
//
//   - text around a diff (commentary, a markdown ```diff fence) is ignored,
//     and so are an apply_patch text's fence and shell heredoc wrapper
//     (apply_patch <<'EOF' ... EOF) and the text around aider blocks;
//   - hunk counts are not trusted (the body runs while lines look like hunk
//     lines), and "@@ ... @@" without numbers is accepted;
//   - an empty line in a hunk is a blank context line, except at the ends
//     of the hunk, where it is dropped;
//   - a line without prefix between hunk lines is a context line that lost
//     its space (it must still match the file);
//   - an apply_patch "@@ -l,s +l,s @@" line is taken as a line hint.
//
// What cannot be repaired safely is refused: an apply_patch text without
// "*** End Patch" (it was probably cut short), change lines after text that
// ended a hunk, a deletion whose hunks do not cover the whole file, a file
// created over a different existing one.
package patch
