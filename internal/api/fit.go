package api

import (
	"strconv"
	"unicode/utf8"
)

// The sizes answers are held to. A GPT action (OpenAI) takes answers of
// fewer than 100,000 characters; patchd's answers stay under that however
// long a patch's diff, description or error is, by cutting what does not
// fit and saying where the rest is.
const (
	// MaxAnswerChars bounds every answer a door gives, in characters of
	// its JSON.
	MaxAnswerChars = 100_000
	// DiffPageChars is the most of a diff one answer carries, in
	// characters of its JSON string; the rest is fetched by offset.
	DiffPageChars = 50_000
	// ListPageChars bounds the patches of one page of a listing, in
	// characters of their JSON: a page ends early, with a NextCursor,
	// when the next patch would pass it.
	ListPageChars = 80_000
	// textChars bounds a description, an error and a target_file in an
	// answer about one patch; listTextChars in a listing.
	textChars     = 6_000
	listTextChars = 1_000
	// attemptChars bounds each earlier attempt's error.
	attemptChars = 800
	// notesChars and filesChars bound a patch's notes and file changes
	// in one answer.
	notesChars = 4_000
	filesChars = 8_000
)

// JSONLen is the length of s as a JSON string's content, the way the doors
// encode it (HTML characters not escaped): quotes, backslashes and control
// characters take two or six characters, invalid UTF-8 six (\ufffd).
func JSONLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		w, size := jsonRuneLen(s[i:])
		n += w
		i += size
	}
	return n
}

// jsonRuneLen is the encoded length of the first rune of s and its size.
func jsonRuneLen(s string) (encoded, size int) {
	c := s[0]
	if c < utf8.RuneSelf {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			return 2, 1
		case c < 0x20:
			return 6, 1
		}
		return 1, 1
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1:
		return 6, 1
	case r == '\u2028' || r == '\u2029':
		return 6, size
	}
	return size, size
}

// CutJSON returns the longest prefix of s whose JSON string content is at
// most max characters, ending at a line end when one is in the second half
// of it, and never inside a rune. It returns s itself when it fits.
func CutJSON(s string, max int) string {
	n, end, lastLine := 0, 0, -1
	for end < len(s) {
		w, size := jsonRuneLen(s[end:])
		if n+w > max {
			break
		}
		n += w
		end += size
		if s[end-size] == '\n' {
			lastLine = end
		}
	}
	if end == len(s) {
		return s
	}
	if lastLine > end/2 {
		end = lastLine
	}
	return s[:end]
}

// cutText cuts s to max JSON characters, saying that it did.
func cutText(s string, max int) string {
	if JSONLen(s) <= max {
		return s
	}
	const mark = " … (cut)"
	return CutJSON(s, max-len(mark)) + mark
}

// FitPatch cuts v's texts to their bounds for an answer about one patch:
// the description, the error and the target file to a few thousand
// characters, each earlier attempt's error to a few hundred, notes and file changes to what fits (a note says how many
// were left out), and the diff to DiffPageChars from byte offset on.
// A diff that does not fit whole is cut at a line end where it can be;
// then DiffSize is its full length in bytes, DiffOffset where this part
// starts, and DiffNext the offset of the rest (0 when this part ends it).
// An offset past the diff's end answers an empty part. FitPatch reports
// whether the diff was cut.
func FitPatch(v *PatchView, offset int) bool {
	fitTexts(v, textChars)
	v.Notes = fitList(v.Notes, notesChars, func(s string) int { return JSONLen(s) + 3 }, "notes")
	v.Files = fitFiles(v, filesChars)
	if offset <= 0 && JSONLen(v.Diff) <= DiffPageChars {
		return false
	}
	size := len(v.Diff)
	offset = min(max(offset, 0), size)
	// Start on a rune.
	for offset < size && !utf8.RuneStart(v.Diff[offset]) {
		offset++
	}
	part := CutJSON(v.Diff[offset:], DiffPageChars)
	v.DiffSize, v.DiffOffset = size, offset
	if end := offset + len(part); end < size {
		v.DiffNext = end
	}
	v.Diff = part
	return true
}

// FitListed cuts a listed patch's texts to their bounds in a listing.
func FitListed(v *PatchView) {
	fitTexts(v, listTextChars)
	v.Notes = fitList(v.Notes, listTextChars, func(s string) int { return JSONLen(s) + 3 }, "notes")
}

func fitTexts(v *PatchView, max int) {
	v.Description = cutText(v.Description, max)
	v.Error = cutText(v.Error, max)
	v.TargetFile = cutText(v.TargetFile, max)
	if len(v.Attempts) > 0 {
		v.Attempts = append([]Attempt(nil), v.Attempts...)
		for i := range v.Attempts {
			v.Attempts[i].Error = cutText(v.Attempts[i].Error, min(max, attemptChars))
		}
	}
}

// fitList keeps the first items of list whose sizes add up to at most max,
// and a last item saying how many were left out.
func fitList(list []string, max int, size func(string) int, what string) []string {
	n := 0
	for i, s := range list {
		if n += size(s); n > max {
			return append(list[:i:i], "… "+strconv.Itoa(len(list)-i)+" more "+what+" left out")
		}
	}
	return list
}

// fitFiles keeps the file changes of v that fit in max characters; a note
// says how many were left out (the diff names every file).
func fitFiles(v *PatchView, max int) []FileChange {
	n := 0
	for i, f := range v.Files {
		if n += JSONLen(f.Path) + 220; n > max {
			v.Notes = append(v.Notes, "… "+strconv.Itoa(len(v.Files)-i)+" more files left out of files: the diff names every file")
			return v.Files[:i:i]
		}
	}
	return v.Files
}

// messageChars bounds a refusal's message in an answer.
const messageChars = 32_000

// FitMessage cuts a refusal's message (which may quote a patch's text) to
// a bound that keeps its answer under MaxAnswerChars.
func FitMessage(s string) string { return cutText(s, messageChars) }

// FitPreview cuts a preview's diff to DiffPageChars and its file list to
// what fits, and returns notes saying what was left out: nothing of a
// preview is stored, so the rest cannot be fetched.
func FitPreview(res *PreviewResult) (notes []string) {
	n := 0
	for i, f := range res.Files {
		if n += JSONLen(f) + 3; n > filesChars {
			notes = append(notes, "… "+strconv.Itoa(len(res.Files)-i)+" more files left out of files: the diff names every file")
			res.Files = res.Files[:i:i]
			break
		}
	}
	if size := len(res.Diff); JSONLen(res.Diff) > DiffPageChars {
		res.Diff = CutJSON(res.Diff, DiffPageChars)
		notes = append(notes, "diff cut: bytes 0 to "+strconv.Itoa(len(res.Diff))+" of "+strconv.Itoa(size)+" shown; a preview is not stored: submit the patch and get it by id for the whole diff, in parts")
	}
	return notes
}
