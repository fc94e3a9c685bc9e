package secrets

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Var is one variable of a dotenv file.
type Var struct {
	Key   string
	Value string
	// Line is the 1-based line the key is on; FormatDotenv ignores it.
	Line int
}

// ParseDotenv parses the plaintext of a secrets file:
//
//	# comment
//	KEY=value                  unquoted: trimmed, " #" starts a comment
//	export KEY=value           the export prefix is allowed and ignored
//	KEY='literal $ \ "'        single quotes: every byte literal, may span lines
//	KEY="a\nb \" \\ \$ \t \r"  double quotes: those escapes only, may span lines
//
// Keys match [A-Za-z_][A-Za-z0-9_]* and appear once. Values are never
// expanded ($ is literal). CRLF line ends are read as LF, and a leading UTF-8
// byte order mark is skipped.
//
// Errors read "line N: message". They name keys but never quote values or
// unparsable text, which may be secret.
func ParseDotenv(data []byte) ([]Var, error) {
	p := dotenvParser{
		s:    strings.ReplaceAll(string(bytes.TrimPrefix(data, []byte("\ufeff"))), "\r\n", "\n"),
		line: 1,
	}
	var vars []Var
	seen := make(map[string]int)
	for {
		v, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return vars, nil
		}
		if first, dup := seen[v.Key]; dup {
			return nil, fmt.Errorf("line %d: %s is already set on line %d: keep one of them", v.Line, v.Key, first)
		}
		seen[v.Key] = v.Line
		vars = append(vars, v)
	}
}

// dotenvParser reads s from i on; line is the line number at i.
type dotenvParser struct {
	s    string
	i    int
	line int
}

func (p *dotenvParser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{line}, args...)...)
}

// skipBlanks advances over spaces and tabs.
func (p *dotenvParser) skipBlanks() {
	for p.i < len(p.s) && isBlank(p.s[p.i]) {
		p.i++
	}
}

// skipLine advances past the next newline, or to the end.
func (p *dotenvParser) skipLine() {
	if nl := strings.IndexByte(p.s[p.i:], '\n'); nl >= 0 {
		p.i += nl + 1
		p.line++
	} else {
		p.i = len(p.s)
	}
}

// next returns the next variable, or ok == false at the end of the input.
func (p *dotenvParser) next() (v Var, ok bool, err error) {
	for {
		p.skipBlanks()
		if p.i == len(p.s) {
			return Var{}, false, nil
		}
		if c := p.s[p.i]; c == '\n' || c == '#' {
			p.skipLine()
			continue
		}
		break
	}

	if rest := p.s[p.i:]; strings.HasPrefix(rest, "export") && len(rest) > 6 && isBlank(rest[6]) {
		j := p.i + 6
		for j < len(p.s) && isBlank(p.s[j]) {
			j++
		}
		if j < len(p.s) && p.s[j] != '=' {
			p.i = j
		}
	}

	v.Line = p.line
	start := p.i
	for p.i < len(p.s) && !isBlank(p.s[p.i]) && p.s[p.i] != '=' && p.s[p.i] != '\n' {
		p.i++
	}
	v.Key = p.s[start:p.i]
	p.skipBlanks()
	if p.i == len(p.s) || p.s[p.i] != '=' {
		return v, false, p.errorf(v.Line, "expected KEY=value")
	}
	if v.Key == "" {
		return v, false, p.errorf(v.Line, "missing key before =")
	}
	if !ValidKey(v.Key) {
		return v, false, p.errorf(v.Line, "invalid key: keys are letters, digits and _, and do not start with a digit")
	}
	p.i++ // '='
	p.skipBlanks()

	if p.i < len(p.s) && (p.s[p.i] == '\'' || p.s[p.i] == '"') {
		if p.s[p.i] == '\'' {
			v.Value, err = p.singleQuoted(v)
		} else {
			v.Value, err = p.doubleQuoted(v)
		}
		if err != nil {
			return v, false, err
		}
		p.skipBlanks()
		if p.i < len(p.s) && p.s[p.i] != '\n' && p.s[p.i] != '#' {
			return v, false, p.errorf(p.line, "unexpected text after the closing quote of %s: "+
				"quote the whole value, or start a comment with #", v.Key)
		}
		p.skipLine()
	} else {
		end := strings.IndexByte(p.s[p.i:], '\n')
		if end < 0 {
			end = len(p.s) - p.i
		}
		raw := p.s[p.i : p.i+end]
		// A # after a blank starts a comment; the blank may be the one that
		// skipBlanks just passed.
		for k := 0; k < len(raw); k++ {
			if raw[k] == '#' && (k > 0 && isBlank(raw[k-1]) || k == 0 && isBlank(p.s[p.i-1])) {
				raw = raw[:k]
				break
			}
		}
		v.Value = strings.TrimRight(raw, " \t\r")
		p.i += end
		p.skipLine()
	}
	if strings.IndexByte(v.Value, 0) >= 0 {
		return v, false, p.errorf(v.Line, "the value of %s contains a NUL byte, which environment variables cannot hold", v.Key)
	}
	return v, true, nil
}

// singleQuoted reads a value from the opening ' to the closing one.
func (p *dotenvParser) singleQuoted(v Var) (string, error) {
	end := strings.IndexByte(p.s[p.i+1:], '\'')
	if end < 0 {
		return "", p.errorf(v.Line, "the single-quoted value of %s has no closing ': add it", v.Key)
	}
	val := p.s[p.i+1 : p.i+1+end]
	p.line += strings.Count(val, "\n")
	p.i += end + 2
	return val, nil
}

// doubleQuoted reads a value from the opening " to the closing one,
// resolving escapes.
func (p *dotenvParser) doubleQuoted(v Var) (string, error) {
	var b strings.Builder
	p.i++ // opening quote
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\n':
			p.line++
		case '\\':
			if p.i+1 < len(p.s) {
				if r, ok := dquoteUnescape[p.s[p.i+1]]; ok {
					b.WriteByte(r)
					p.i += 2
					continue
				}
			}
			return "", p.errorf(p.line, `unsupported escape in the double-quoted value of %s: `+
				`only \n \r \t \" \\ \$ are known; write \\ for a backslash, or single-quote the value`, v.Key)
		}
		b.WriteByte(c)
		p.i++
	}
	return "", p.errorf(v.Line, `the double-quoted value of %s has no closing ": add it`, v.Key)
}

var dquoteUnescape = map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', '"': '"', '\\': '\\', '$': '$'}

// isBlank reports space, tab and carriage return: a CR that is not part of a
// CRLF is treated as white space, never as part of a key or bare value.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// ValidKey reports whether key can name a variable in a secrets file:
// [A-Za-z_][A-Za-z0-9_]*.
func ValidKey(key string) bool {
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// FormatDotenv writes vars as a dotenv file that ParseDotenv reads back to
// the same keys and values, one KEY=value line a variable in the given order.
// Values are left bare when they are made of safe characters only, else
// single-quoted (even across lines, so a PEM block stays readable) when they
// hold no ' or carriage return, else double-quoted with escapes.
//
// The keys must satisfy ValidKey and be distinct, and values must not hold
// NUL bytes; otherwise ParseDotenv rejects the result.
func FormatDotenv(vars []Var) []byte {
	var b bytes.Buffer
	for _, v := range vars {
		b.WriteString(v.Key)
		b.WriteByte('=')
		switch {
		case isBare(v.Value):
			b.WriteString(v.Value)
		case !strings.ContainsAny(v.Value, "'\r"):
			b.WriteByte('\'')
			b.WriteString(v.Value)
			b.WriteByte('\'')
		default:
			b.WriteByte('"')
			for i := 0; i < len(v.Value); i++ {
				switch c := v.Value[i]; c {
				case '\\', '"', '$':
					b.WriteByte('\\')
					b.WriteByte(c)
				case '\n':
					b.WriteString(`\n`)
				case '\r':
					b.WriteString(`\r`)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('"')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// isBare reports whether s can be written unquoted: it has only characters
// that mean nothing to ParseDotenv or to a shell.
func isBare(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_-./:@%+,=", c) >= 0) {
			return false
		}
	}
	return true
}

// varSpan is a variable and the bytes of the normalized text that define
// it: from the start of its first line to past its last line.
type varSpan struct {
	Var
	start, end int
}

// dotenvSpans parses body as ParseDotenv does and returns where each
// variable is, in the text ParseDotenv reads (byte order mark dropped, CRLF
// as LF), which it also returns.
func dotenvSpans(body []byte) ([]varSpan, string, error) {
	if _, err := ParseDotenv(body); err != nil {
		return nil, "", err
	}
	text := strings.ReplaceAll(string(bytes.TrimPrefix(body, []byte("\ufeff"))), "\r\n", "\n")
	lineStart := []int{0}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			lineStart = append(lineStart, i+1)
		}
	}
	p := dotenvParser{s: text, line: 1}
	var spans []varSpan
	for {
		v, ok, err := p.next()
		if err != nil {
			return nil, "", err
		}
		if !ok {
			return spans, text, nil
		}
		spans = append(spans, varSpan{Var: v, start: lineStart[v.Line-1], end: p.i})
	}
}

// SetVar sets key to value in the dotenv text body, in place when the key
// is there (the rest of the text, comments included, stays as it is) and at
// the end otherwise. It returns body itself when nothing changes.
func SetVar(body []byte, key, value string) ([]byte, error) {
	spans, text, err := dotenvSpans(body)
	if err != nil {
		return nil, err
	}
	line := string(FormatDotenv([]Var{{Key: key, Value: value}}))
	for _, s := range spans {
		if s.Key == key {
			if s.Value == value {
				return body, nil
			}
			return []byte(text[:s.start] + line + text[s.end:]), nil
		}
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return []byte(text + line), nil
}

// UnsetVars removes keys from the dotenv text body, leaving the rest of the
// text as it is. Every key must be set.
func UnsetVars(body []byte, keys []string) ([]byte, error) {
	spans, text, err := dotenvSpans(body)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, k := range keys {
		if !slices.ContainsFunc(spans, func(s varSpan) bool { return s.Key == k }) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s is not set", strings.Join(missing, ", "))
	}
	for i := len(spans) - 1; i >= 0; i-- {
		if s := spans[i]; slices.Contains(keys, s.Key) {
			text = text[:s.start] + text[s.end:]
		}
	}
	return []byte(text), nil
}
