package gitserver

import (
	"errors"
	"strings"
)

// errCommandLine is returned for a command line with an unterminated quote or
// a trailing backslash.
var errCommandLine = errors.New("cannot parse the command line (unbalanced quotes?)")

// splitCommand splits an SSH command line into words the way a POSIX shell
// would, for quoting only: single quotes, double quotes (with \ escaping
// \, ", $ and `), and backslash escapes outside quotes. Nothing is expanded.
// Unlike a lenient splitter it refuses an unterminated quote, so that
// `git-receive-pack 'app` never becomes a push to "app".
func splitCommand(raw string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(raw[i+1:], '\'')
			if j < 0 {
				return nil, errCommandLine
			}
			cur.WriteString(raw[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' && i+1 < len(raw) && strings.IndexByte("\\\"$`", raw[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(raw[i])
			}
			if i >= len(raw) {
				return nil, errCommandLine
			}
		case c == '\\':
			if i+1 >= len(raw) {
				return nil, errCommandLine
			}
			inWord = true
			i++
			cur.WriteByte(raw[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
