package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/refline/refline/names"
)

// MatchPath reports whether a change to the file p, a slash-separated path
// relative to the repository root, passes the Paths filter. It does not look
// at Push.
//
// A pattern matches p, or any directory that holds p, in the way git
// pathspecs do: "web" and "web/" match everything under web/. Within a path
// segment `*` matches any characters, `?` one character, `[a-z]` a class and
// `[!a-z]` (or `[^a-z]`) its complement, and `\` escapes, as in path.Match; a
// segment `**` matches any number of segments, so "**/*.go" matches every Go
// file. A pattern ending in "/" matches only directories.
// Patterns are anchored at the repository root: "*.md" matches README.md but
// not docs/a.md.
func (t Triggers) MatchPath(p string) bool {
	if len(t.Paths) == 0 {
		return true
	}
	for _, pat := range t.Paths {
		if matchPathPattern(pat, p) {
			return true
		}
	}
	return false
}

// MatchesBranch reports whether a push to branch (a name like "main", without
// refs/heads/) runs the pipeline, when the repository deploys from
// deployBranch. Branches nil means deployBranch only.
func (t Triggers) MatchesBranch(branch, deployBranch string) bool {
	if !t.Push || branch == "" {
		return false
	}
	if t.Branches == nil {
		return branch == deployBranch
	}
	for _, pat := range t.Branches {
		if globMatch(pat, branch) {
			return true
		}
	}
	return false
}

// pathPatternProblem checks an on.push.paths pattern.
func pathPatternProblem(s string) string {
	if s == "" {
		return "is empty; write a pattern such as web/**"
	}
	if len(s) > maxPatternLen {
		return fmt.Sprintf("is longer than %d bytes; shorten it", maxPatternLen)
	}
	if strings.HasPrefix(s, "!") {
		return "starts with '!', but negated patterns are not supported; list only the paths that should run the pipeline"
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7F }) >= 0 {
		return "contains a control character; remove it"
	}
	if strings.HasPrefix(s, "/") {
		return "is absolute; write it relative to the repository root, like web/**"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
		switch {
		case seg == "":
			return "has an empty segment (//); remove the extra '/'"
		case seg == "." || seg == "..":
			return "has a . or .. segment; write it relative to the repository root without them"
		case seg != "**" && strings.Contains(seg, "**"):
			return "uses ** inside a segment; ** must stand alone between slashes, like web/**/*.go"
		}
		if _, err := path.Match(gitClasses(seg), ""); err != nil {
			return "is not a valid pattern; check its [ ] classes and \\ escapes"
		}
	}
	return ""
}

// branchPatternProblem checks an on.push.branches entry: a git branch name
// in which `*` may stand for any characters but '/', and `**` for any
// number of whole segments.
func branchPatternProblem(s string) string {
	for _, seg := range strings.Split(s, "/") {
		if seg != "**" && strings.Contains(seg, "**") {
			return "** must stand alone between slashes"
		}
	}
	return branchNameProblem(strings.ReplaceAll(s, "*", "x"))
}

// branchNameProblem applies git check-ref-format --branch (names.Branch).
func branchNameProblem(s string) string { return names.Why(names.Branch(s)) }

// matchPathPattern reports whether pattern matches name or one of the
// directories that hold it (see Triggers.MatchPath).
func matchPathPattern(pattern, name string) bool {
	if name == "" {
		return false
	}
	dirOnly := strings.HasSuffix(pattern, "/")
	reach := globReach(strings.Split(strings.TrimSuffix(pattern, "/"), "/"), strings.Split(name, "/"))
	last := len(reach) - 1
	for j := 1; j <= last; j++ {
		if reach[j] && (j < last || !dirOnly) {
			return true
		}
	}
	return false
}

// globMatch reports whether pattern matches all of name.
func globMatch(pattern, name string) bool {
	reach := globReach(strings.Split(pattern, "/"), strings.Split(name, "/"))
	return reach[len(reach)-1]
}

// globReach matches the segments of a pattern against a name's and returns
// reach, where reach[j] is whether the whole pattern matches name[:j]. It
// runs in O(len(pat) * len(name)), however many ** the pattern holds.
func globReach(pat, name []string) []bool {
	pat = slices.Clone(pat)
	for i, seg := range pat {
		pat[i] = gitClasses(seg)
	}
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for _, seg := range pat {
		clear(next)
		if seg == "**" {
			reached := false
			for j := range cur {
				reached = reached || cur[j]
				next[j] = reached
			}
		} else {
			for j := 0; j < len(name); j++ {
				if cur[j] {
					if ok, _ := path.Match(seg, name[j]); ok {
						next[j+1] = true
					}
				}
			}
		}
		cur, next = next, cur
	}
	return cur
}

// gitClasses turns the negated classes of git's patterns, [!a-z], into
// path.Match's [^a-z].
func gitClasses(seg string) string {
	if !strings.Contains(seg, "[!") {
		return seg
	}
	b := []byte(seg)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // skip the escaped byte
		case '[':
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
			}
			// Skip to the end of the class, so that a '[' inside it is literal.
			for i++; i < len(b) && b[i] != ']'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return string(b)
}
