package patch

import (
	"fmt"
	"strings"
)

// MaxTagLen is the longest tag name accepted.
const MaxTagLen = 128

// checkTag refuses a tag that is not a plain tag name: one git accepts as
// refs/tags/<tag> (git check-ref-format) and that cannot be read as
// something else: not an option ("-d"), not a full ref name
// ("refs/heads/master", which shadows the branch wherever it is named), not
// HEAD or another *_HEAD. Letters, digits and "._/()-" only, starting with a
// letter or digit; no component starting with "." or ending with ".lock",
// no "..", "//", and no "/" or "." at the end.
func checkTag(tag string) error {
	bad := func(why string) error { return invalid("tag", fmt.Sprintf("%q is not a plain tag name: %s", tag, why)) }
	if len(tag) > MaxTagLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxTagLen))
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._/()-", c) >= 0) {
			return bad(fmt.Sprintf("%q is not allowed (letters, digits and ._/()- only)", string(rune(c))))
		}
	}
	if c := tag[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
		return bad("it must start with a letter or digit")
	}
	if len(tag) >= 5 && strings.EqualFold(tag[:5], "refs/") {
		return bad(`it starts with "refs/"; give the name alone, e.g. "v1.2.3"`)
	}
	if tag == "HEAD" || strings.HasSuffix(tag, "_HEAD") {
		return bad("git reads it as a HEAD")
	}
	if strings.Contains(tag, "..") || strings.HasSuffix(tag, ".") || strings.HasSuffix(tag, "/") {
		return bad(`it holds ".." or ends with "." or "/"`)
	}
	for c := range strings.SplitSeq(tag, "/") {
		if c == "" || c[0] == '.' || strings.HasSuffix(c, ".lock") {
			return bad(`a component is empty, starts with "." or ends with ".lock"`)
		}
	}
	return nil
}
