package patch

import (
	"fmt"
	"strings"
)

// maxAll bounds the places one "all" search/replace rewrites.
const maxAll = 1 << 20

func (e *SearchReplace) apply(w *workset) error {
	f, err := w.file(e.TargetFile)
	if err != nil {
		return err
	}
	if e.Search == "" {
		// Aider's convention for a new file: nothing to search for.
		switch {
		case !f.exists || len(f.cur) == 0:
			return w.write(f, []byte(newFileEOL(e.Replace)))
		}
		return errorf(CodeFileExists, "search text is empty but %s exists and is not empty; give the text to replace", e.TargetFile)
	}
	if !f.exists {
		return errorf(CodeFileNotFound, "target file %s does not exist", e.TargetFile)
	}
	if out, ok, err := e.replaceExact(f.cur, w.room(f)); ok || err != nil {
		if err != nil {
			return err
		}
		return w.write(f, out)
	}

	// No exact occurrence: compare line by line, more and more loosely.
	d, err := w.doc(f, f.cur)
	if err != nil {
		return err
	}
	want := splitText(e.Search)
	h := searchHunk(want, splitText(e.Replace))
	for lv := levelExact; lv < numLevels; lv++ {
		limit := maxPlaces
		if e.All {
			limit = maxAll
		}
		ms := find(d, want, 0, len(d.lines), lv, limit, e.All)
		switch {
		case len(ms) == 0:
			continue
		case len(ms) > 1 && !e.All:
			me := ambiguous(ms)
			me.File, me.What, me.Hint = e.TargetFile, "search text", `add surrounding lines to make it unique, or set "all": true`
			return me
		}
		// Backwards, so that the positions of earlier matches hold.
		for i := len(ms) - 1; i >= 0; i-- {
			if _, err := h.apply(d, ms[i]); err != nil {
				return err
			}
		}
		if s := ms[0].describe(); s != "" {
			f.note("search text matched " + s)
		}
		if len(ms) > 1 {
			f.note(fmt.Sprintf("search text replaced in %d places", len(ms)))
		}
		return w.write(f, d.bytes())
	}
	me := notFound(d, want, false)
	me.File, me.What = e.TargetFile, "search text"
	me.AppliedAt = appliedAt(d, splitText(e.Replace))
	return me
}

// replaceExact replaces the search text where it occurs as is. ok is false
// when it does not occur. The replacement takes the file's line endings,
// and ends with a newline exactly when the search text does, so that an
// agent that drops the last newline of one of them does not join two lines
// or add an empty one.
//
// The result may not pass rm, which is checked before it is built.
func (e *SearchReplace) replaceExact(content []byte, rm room) (out []byte, ok bool, err error) {
	s := string(content)
	if e.All {
		// Only whether there is one matters, and the size of the result.
		return e.replaceAll(s, rm)
	}
	var places []int
	for i := 0; ; {
		j := strings.Index(s[i:], e.Search)
		if j < 0 {
			break
		}
		if e.wholeLines && i+j > 0 && s[i+j-1] != '\n' {
			i += j + 1 // within a line: not a place for a text of whole lines
			continue
		}
		places = append(places, i+j)
		if len(places) >= maxPlaces {
			break
		}
		i += j + 1
	}
	if len(places) == 0 {
		return nil, false, nil
	}
	if len(places) > 1 {
		me := &MatchError{File: e.TargetFile, What: "search text", Count: len(places),
			Hint: `add surrounding lines to make it unique, or set "all": true`}
		for _, p := range places {
			me.Places = append(me.Places, strings.Count(s[:p], "\n")+1)
		}
		return nil, true, me
	}
	repl := e.replacement(s)
	if err := rm.over(int64(len(s) - len(e.Search) + len(repl))); err != nil {
		return nil, true, err
	}
	return []byte(strings.Replace(s, e.Search, repl, 1)), true, nil
}

// replaceAll is replaceExact with All: every occurrence replaced.
func (e *SearchReplace) replaceAll(s string, rm room) (out []byte, ok bool, err error) {
	n := strings.Count(s, e.Search)
	if n == 0 {
		return nil, false, nil
	}
	repl := e.replacement(s)
	if err := rm.over(int64(len(s)) + int64(n)*(int64(len(repl))-int64(len(e.Search)))); err != nil {
		return nil, true, err
	}
	return []byte(strings.ReplaceAll(s, e.Search, repl)), true, nil
}

// replacement is the replacement text as it goes into s: in s's line
// endings, and ending with a newline exactly when the search text does.
func (e *SearchReplace) replacement(s string) string {
	eol := "\n"
	if strings.Count(s, "\r\n")*2 > strings.Count(s, "\n") {
		eol = "\r\n"
	}
	repl := convertEOL(e.Replace, eol)
	searchNL := strings.HasSuffix(e.Search, "\n")
	switch {
	case repl == "":
	case searchNL && !strings.HasSuffix(repl, "\n"):
		repl += eol
	case !searchNL && strings.HasSuffix(repl, "\n"):
		repl = strings.TrimSuffix(repl, eol)
	}
	return repl
}

// searchHunk turns a search text and its replacement, as lines, into a
// hunk, so that lines they share keep the file's version of them (with its
// trailing whitespace) when the search matched loosely.
func searchHunk(want, with []string) *hunk {
	a := make([][]byte, len(want))
	for i, l := range want {
		a[i] = []byte(l)
	}
	b := make([][]byte, len(with))
	for i, l := range with {
		b[i] = []byte(l)
	}
	h := &hunk{hint: -1}
	for _, o := range appendEdits(nil, a, b) {
		h.lines = append(h.lines, hline{kind: o.kind, text: string(o.line)})
	}
	return h
}
