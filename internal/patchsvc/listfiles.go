package patchsvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/patchd/patchd/internal/api"
	"github.com/patchd/patchd/internal/pathmatch"
	"github.com/patchd/patchd/internal/workspace"
)

// Bounds of one ListFiles walk, besides the caps on its answer: however
// large the tree and however hostile its .gitignore files, a listing
// stops, and says so.
const (
	// listTimeout bounds the walk's time.
	listTimeout = 5 * time.Second
	// maxListExamined bounds the directories and files the walk looks at.
	maxListExamined = 200_000
	// maxListNotes bounds the notes one answer carries.
	maxListNotes = 4
	// maxListRules bounds the .gitignore rules in effect at once (every
	// path is matched against each): a .gitignore that would pass it is
	// not used, with a note.
	maxListRules = 10_000
)

// ListFiles implements api.Service over the workspace's confined Walk,
// with the .gitignore files of each directory (pathmatch.ParseIgnore)
// read as the walk enters it, and a directory no glob match can be under
// never entered.
func (s *Service) ListFiles(ctx context.Context, req api.ListFilesRequest) (api.FileList, error) {
	l, err := s.list(ctx, req)
	if err != nil {
		return api.FileList{}, err
	}
	return api.FileList{Files: l.files, Truncated: l.truncated, Note: strings.Join(l.notes, "; ")}, nil
}

// list is ListFiles, answering the walk's state.
func (s *Service) list(ctx context.Context, req api.ListFilesRequest) (*lister, error) {
	limit := req.Limit
	if limit < 0 || limit > api.MaxListFilesLimit {
		return nil, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "limit",
			"limit must be a number from 1 to %d, not %d", api.MaxListFilesLimit, limit)
	}
	if limit == 0 {
		limit = api.MaxListFilesLimit
	}
	l := &lister{s: s, limit: limit, files: []string{}}
	if req.Glob != "" {
		if len(req.Glob) > api.MaxGlobLen {
			return nil, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "glob",
				"glob is %d bytes, more than the %d allowed", len(req.Glob), api.MaxGlobLen)
		}
		g, err := pathmatch.CompileGlob(req.Glob)
		if err != nil {
			return nil, api.Errorf(api.KindInvalid, api.CodeFieldInvalid, "glob", "%v", err)
		}
		l.glob = g
	}
	if s.ws == nil {
		return nil, api.Errorf(api.KindUnavailable, api.CodeInternal, "", "no workspace to list")
	}
	wctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	l.ctx = wctx
	err := s.ws.Walk(wctx, req.Path, workspace.WalkOptions{File: ".gitignore", MaxFile: pathmatch.MaxIgnoreBytes}, l.visit)
	if dte, ok := errors.AsType[*workspace.DirTooLargeError](err); ok {
		l.stop(fmt.Sprintf("the directory %q has more than %d entries and was not listed; list inside it with path, or outside it", dte.Path, dte.Max))
		err = nil
	}
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		l.stop(fmt.Sprintf("the listing stopped after %s", listTimeout))
		err = nil
	}
	if err != nil {
		return nil, s.fileRefusal(err)
	}
	return l, nil
}

// lister is the state of one ListFiles walk.
type lister struct {
	s         *Service
	ctx       context.Context
	glob      *pathmatch.Glob
	limit     int
	started   bool
	start     string              // the listed directory, real, relative to the root
	stack     []*pathmatch.Ignore // the .gitignore files of the directories above the path at hand
	files     []string
	bytes     int // files as JSON encodes them
	examined  int
	truncated bool
	notes     []string
}

// visit is the WalkFunc.
func (l *lister) visit(e workspace.WalkEntry) error {
	p, isDir := e.Path, e.Dir
	if !l.started {
		l.started, l.start = true, p
		// The .gitignore files of the root and every directory above
		// the listed one apply inside it. The listed directory itself
		// is listed even when they exclude it: it was asked for.
		if p != "" {
			l.read("")
			for i := range len(p) {
				if p[i] == '/' {
					l.read(p[:i])
				}
			}
		}
		l.push(p, e.File, e.FileErr)
		return nil
	}
	if l.examined++; l.examined > maxListExamined {
		l.stop(fmt.Sprintf("the listing stopped after looking at %d entries", maxListExamined))
		return fs.SkipAll
	}
	if l.examined%256 == 0 && l.ctx.Err() != nil {
		return l.ctx.Err()
	}
	for n := len(l.stack); n > 0; n-- {
		if d := l.stack[n-1].Dir; d == "" || strings.HasPrefix(p, d+"/") {
			break
		}
		l.stack = l.stack[:n-1]
	}
	if pathmatch.Ignored(l.stack, p, isDir) {
		if isDir {
			return fs.SkipDir
		}
		return nil
	}
	rel := p
	if l.start != "" {
		rel = strings.TrimPrefix(p, l.start+"/")
	}
	if isDir {
		if l.glob != nil && !l.glob.MayMatchUnder(rel) {
			return fs.SkipDir
		}
		if e.Err != nil {
			l.note(fmt.Sprintf("%s could not be listed: %v", p, e.Err))
			return fs.SkipDir
		}
		if e.TooDeep {
			l.stop(fmt.Sprintf("%s is %d levels deep and was not entered; list it with path", p, workspace.MaxWalkDepth))
			return fs.SkipDir
		}
		l.push(p, e.File, e.FileErr)
		return nil
	}
	if l.glob != nil && !l.glob.Match(rel) {
		return nil
	}
	n := jsonLen([]byte(p)) + 3
	if len(l.files) >= l.limit || l.bytes+n > api.MaxListBytes {
		l.stop(fmt.Sprintf("more files than one answer holds (at most %d paths and %d bytes of them, JSON-encoded); list a deeper path or use a narrower glob",
			l.limit, api.MaxListBytes))
		return fs.SkipAll
	}
	l.files = append(l.files, p)
	l.bytes += n
	return nil
}

// read reads the .gitignore file of dir, a directory above the listed
// one, onto the stack.
func (l *lister) read(dir string) {
	name := gitignoreOf(dir)
	data, _, exists, err := l.s.ws.ReadFileMax(name, pathmatch.MaxIgnoreBytes)
	if err == nil && !exists {
		return
	}
	l.push(dir, data, err)
}

// push puts the .gitignore file of dir (data, or why it could not be
// read) onto the stack. One patchd may not read (a symbolic link, a
// directory) is skipped, as git skips a .gitignore that is a symbolic
// link; one over the size bound is skipped with a note.
func (l *lister) push(dir string, data []byte, err error) {
	if _, ok := errors.AsType[*workspace.TooLargeError](err); ok {
		l.note(fmt.Sprintf("%s is over %d bytes and was not used", gitignoreOf(dir), pathmatch.MaxIgnoreBytes))
		return
	}
	if err != nil || data == nil {
		return
	}
	ig := pathmatch.ParseIgnore(dir, data)
	if l.rules()+ig.Rules() > maxListRules {
		l.note(fmt.Sprintf("%s was not used: with the .gitignore files above it, it makes more than %d rules", gitignoreOf(dir), maxListRules))
		return
	}
	if ig.Dropped > 0 {
		l.note(fmt.Sprintf("%d lines of %s were not used (over %d rules, longer than %d bytes, or not a pattern)",
			ig.Dropped, gitignoreOf(dir), pathmatch.MaxIgnoreRules, pathmatch.MaxRuleLen))
	}
	l.stack = append(l.stack, ig)
}

// rules counts the rules in effect.
func (l *lister) rules() int {
	n := 0
	for _, ig := range l.stack {
		n += ig.Rules()
	}
	return n
}

func gitignoreOf(dir string) string {
	if dir == "" {
		return ".gitignore"
	}
	return dir + "/.gitignore"
}

// stop marks the answer truncated, with why.
func (l *lister) stop(why string) {
	l.truncated = true
	l.note(why)
}

func (l *lister) note(s string) {
	if len(l.notes) < maxListNotes {
		l.notes = append(l.notes, s)
	}
}
