// Package names holds the grammar of every name refline takes from users and
// turns into a path or a ref: repositories (SPEC §2), pipelines and
// environments (SPEC §5), stages, and git ref and branch names.
//
// It is the one home of these rules. The SSH command gate, the pipeline file
// parser, the ref parser and the stores that build paths from names all ask
// here, so that a name one of them accepts cannot mean something else to
// another: a pipeline called "../theirs/web" is refused by every one of them,
// not only by those that happen to check.
package names

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on the length of names.
const (
	// MaxRepoLen bounds a repository name, in bytes (SPEC §2).
	MaxRepoLen = 255
	// MaxLen bounds pipeline, environment and stage names, which become
	// ref components and file names.
	MaxLen = 100
)

// The grammars of the one-segment names. They are exported for callers that
// need the pattern itself; checks go through the functions below, which also
// apply the length limit.
var (
	// PipelineRE is SPEC §5's NAME: lowercase letters, digits and '-',
	// starting with a letter or digit.
	PipelineRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// EnvRE is the grammar of environment names, the same as pipelines'.
	EnvRE = PipelineRE
	// StageRE is the grammar of stage names.
	StageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// ImageRE is the grammar of image names (DATA/images/NAME): one path
	// segment that never starts with "." (a half-done import is ".NAME.tmp-…").
	ImageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// ErrTooLong is matched (errors.Is) by the errors for names over their
// length limit, for callers that word that case themselves.
var ErrTooLong = errors.New("name is too long")

// ErrBadRef is wrapped by Ref's errors.
var ErrBadRef = errors.New("invalid ref name")

// Error is a name that breaks its rule.
type Error struct {
	// What names the kind of name: "pipeline name", "repository name".
	What string
	// Name is the name as given.
	Name string
	// Why completes "<What> <Name> …": "is invalid; use lowercase …".
	Why string

	tooLong bool
	msg     string // the whole message when it does not follow the pattern
}

func (e *Error) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("%s %s %s", e.What, Quote(e.Name), e.Why)
}

// Is makes errors.Is(err, ErrTooLong) true for a name over its limit.
func (e *Error) Is(target error) bool { return target == ErrTooLong && e.tooLong }

// Why returns what completes "<kind> name <name> …" for an *Error (the
// wording the pipeline file parser uses), the message of any other error,
// and "" for nil.
func Why(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Why
	default:
		return err.Error()
	}
}

const (
	lowerRule = "use lowercase letters, digits and '-', starting with a letter or digit"
	stageRule = "use letters, digits, '.', '_' and '-', starting with a letter or digit"
	imageRule = "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
)

// Pipeline checks a pipeline name (SPEC §5): [a-z0-9][a-z0-9-]*, at most
// MaxLen bytes. A valid pipeline name is one path segment and one ref
// component: no "/", no ".", no "..".
func Pipeline(name string) error { return segment("pipeline name", name, PipelineRE, lowerRule) }

// Env checks an environment name as pipeline files define them and commands
// take them: the pipeline grammar.
func Env(name string) error { return segment("environment name", name, EnvRE, lowerRule) }

// Stage checks a stage name: letters, digits, '.', '_' and '-', starting with
// a letter or digit, at most MaxLen bytes. It names a log file.
func Stage(name string) error { return segment("stage name", name, StageRE, stageRule) }

// Image checks an image name (SPEC §9, DATA/images/NAME): lowercase
// letters, digits, '.', '_' and '-', starting with a letter or digit, at
// most MaxLen bytes.
func Image(name string) error { return segment("image name", name, ImageRE, imageRule) }

func segment(what, name string, re *regexp.Regexp, rule string) error {
	switch {
	case name == "":
		return &Error{What: what, Name: name, Why: "is empty; " + rule}
	case len(name) > MaxLen:
		return &Error{What: what, Name: name, Why: fmt.Sprintf("is longer than %d characters; shorten it", MaxLen), tooLong: true}
	case !re.MatchString(name):
		return &Error{What: what, Name: name, Why: "is invalid; " + rule}
	}
	return nil
}

// Repo checks a repository name against SPEC §2: one or more "/"-separated
// segments of [A-Za-z0-9._-], none starting with ".", at most MaxRepoLen
// bytes, and no directory segment ending in ".git" ("a.git/b" would live
// inside repository "a"). The grammar alone keeps a name inside whatever
// directory it is joined to: no empty segment, no "..", no absolute path, no
// "%" (run stores escape "/" as "%2F").
func Repo(name string) error {
	bad := func(msg, why string) error {
		return &Error{What: "repository name", Name: name, Why: why, msg: msg}
	}
	if name == "" {
		return bad("repository name is empty", "is empty")
	}
	if len(name) > MaxRepoLen {
		return &Error{What: "repository name", Name: name, tooLong: true,
			Why: fmt.Sprintf("is %d bytes; the limit is %d", len(name), MaxRepoLen),
			msg: fmt.Sprintf("repository name is %d bytes; the limit is %d", len(name), MaxRepoLen)}
	}
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		if seg == "" {
			return &Error{What: "repository name", Name: name, Why: "has an empty path segment"}
		}
		if seg[0] == '.' {
			return &Error{What: "repository name", Name: name, Why: "has a segment starting with '.'"}
		}
		for j := 0; j < len(seg); j++ {
			if c := seg[j]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return &Error{What: "repository name", Name: name,
					Why: fmt.Sprintf("has the character %q; use letters, digits, '.', '_', '-' and '/'", c)}
			}
		}
		if i < len(segs)-1 && strings.HasSuffix(seg, ".git") {
			return &Error{What: "repository name", Name: name, Why: "has a directory segment ending in .git"}
		}
	}
	return nil
}

// CleanRepo turns what a client sends ("/team/app.git", "team/app") into a
// repository name and checks it with Repo.
func CleanRepo(raw string) (string, error) {
	name := strings.TrimPrefix(raw, "/")
	name = strings.TrimSuffix(name, "/")
	name = strings.TrimSuffix(name, ".git")
	if err := Repo(name); err != nil {
		return "", err
	}
	return name, nil
}

// Ref returns an error wrapping ErrBadRef unless git accepts ref as a ref
// name, exactly as `git check-ref-format REF` does (no options: at least two
// components, no wildcards). The error says which rule ref breaks.
//
// The rules, from git's refs.c: components are separated by "/"; no
// component is empty, starts with "." or ends with ".lock"; the name does not
// end with "." nor contain "..", "@{", a control character, space, "~", "^",
// ":", "?", "*", "[" or "\"; and it is not "@".
func Ref(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrBadRef, ref, why)
	}
	if ref == "@" {
		return bad(`"@" is not a ref name`)
	}
	components := 0
	rest := ref
	for {
		comp, tail, more := strings.Cut(rest, "/")
		if err := refComponent(comp); err != "" {
			return bad(err)
		}
		components++
		if !more {
			break
		}
		rest = tail
	}
	if strings.HasSuffix(ref, ".") {
		return bad(`ends with "."`)
	}
	if components < 2 {
		return bad(`needs at least one "/" (like refs/heads/main)`)
	}
	return nil
}

// RefComponent checks name as the last component of a ref: one component
// that git accepts there (so "eu_west.1" but not "a/b", ".x" or "x.").
// Deploy refs take their ENV component by this rule, wider than Env, so that
// a ref outside the pipeline grammar is still recognised, and refused, as a
// deploy ref.
func RefComponent(name string) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%w %q: is not one ref component", ErrBadRef, name)
	}
	return Ref("refs/" + name)
}

// refComponent applies git's check_refname_component to one component and
// returns why it is bad, or "".
func refComponent(c string) string {
	if c == "" {
		return `has an empty component (leading, trailing or double "/")`
	}
	var last byte
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case ch < 0x20 || ch == 0x7f:
			return "contains a control character"
		case ch == '.' && last == '.':
			return `contains ".."`
		case ch == '{' && last == '@':
			return `contains "@{"`
		case strings.IndexByte(" ~^:?*[\\", ch) >= 0:
			return fmt.Sprintf("contains %q", ch)
		}
		last = ch
	}
	if c[0] == '.' {
		return `has a component starting with "."`
	}
	if strings.HasSuffix(c, ".lock") {
		return `has a component ending with ".lock"`
	}
	return ""
}

// Branch checks a branch name as `git check-ref-format --branch` does. Its
// Why completes "… because …": "it contains \"..\"".
func Branch(s string) error {
	bad := func(why string) error {
		return &Error{What: "branch name", Name: s, Why: why, msg: fmt.Sprintf("branch name %s is invalid: %s", Quote(s), why)}
	}
	switch {
	case s == "":
		return bad("it is empty")
	case len(s) > 255:
		return bad("it is longer than 255 bytes")
	case s == "HEAD" || s == "@":
		return bad(fmt.Sprintf("%s is not a branch", s))
	case strings.HasPrefix(s, "-"):
		return bad("it starts with '-'")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7F || strings.ContainsRune(" ~^:?[\\", r) {
			return bad(fmt.Sprintf("it contains %q", r))
		}
	}
	switch {
	case strings.Contains(s, ".."):
		return bad(`it contains ".."`)
	case strings.Contains(s, "@{"):
		return bad(`it contains "@{"`)
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return bad("it has an empty segment")
	case strings.HasSuffix(s, "."):
		return bad("it ends with '.'")
	}
	for _, seg := range strings.Split(s, "/") {
		if strings.HasPrefix(seg, ".") {
			return bad("a segment starts with '.'")
		}
		if strings.HasSuffix(seg, ".lock") {
			return bad(`a segment ends with ".lock"`)
		}
	}
	return nil
}

// Quote quotes a name, or any text a user gave, for a message, cut to 60
// bytes so that a huge name does not flood the terminal.
func Quote(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
