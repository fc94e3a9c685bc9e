package secrets

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseDotenv(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Var
	}{
		{"empty", "", nil},
		{"comments and blank lines", "# c\n\n   \n\t# indented\n", nil},
		{"simple", "A=1\nB=two\n", []Var{{"A", "1", 1}, {"B", "two", 2}}},
		{"no final newline", "A=1", []Var{{"A", "1", 1}}},
		{"key syntax", "_=1\na_B9=2\n__X__=3\n", []Var{{"_", "1", 1}, {"a_B9", "2", 2}, {"__X__", "3", 3}}},
		{"empty value", "A=\nB=  \nC=''\nD=\"\"\n", []Var{{"A", "", 1}, {"B", "", 2}, {"C", "", 3}, {"D", "", 4}}},
		{"export prefix", "export A=1\nexport\tB=2\nexport   C = 3\n", []Var{{"A", "1", 1}, {"B", "2", 2}, {"C", "3", 3}}},
		{"key named export", "export=1\nX=2\n", []Var{{"export", "1", 1}, {"X", "2", 2}}},
		{"blanks around = and indentation", "  A = 1 \n\tB=\t2\t\n", []Var{{"A", "1", 1}, {"B", "2", 2}}},
		{"unquoted keeps inner text", "A=a b  c\nB=x=y=z\nC=it's\nD=say \"hi\"\nE=$HOME\\n\n", []Var{
			{"A", "a b  c", 1}, {"B", "x=y=z", 2}, {"C", "it's", 3}, {"D", `say "hi"`, 4}, {"E", `$HOME\n`, 5}}},
		{"inline comment after unquoted", "A=1 # one\nB=2\t#two\nC= # nothing\nD=a#b\nE=#x\nF=a #b #c\n", []Var{
			{"A", "1", 1}, {"B", "2", 2}, {"C", "", 3}, {"D", "a#b", 4}, {"E", "#x", 5}, {"F", "a", 6}}},
		{"single quotes are literal", `A='a $B \n \\ "q" # not a comment'` + "\n", []Var{{"A", `a $B \n \\ "q" # not a comment`, 1}}},
		{"single quotes keep blanks", "A='  padded  '\n", []Var{{"A", "  padded  ", 1}}},
		{"single quotes span lines", "A='line1\nline2\n\n'\nB=after\n", []Var{{"A", "line1\nline2\n\n", 1}, {"B", "after", 5}}},
		{"double quote escapes", `A="n:\n r:\r t:\t q:\" b:\\ d:\$ $PATH # kept"` + "\n", []Var{
			{"A", "n:\n r:\r t:\t q:\" b:\\ d:$ $PATH # kept", 1}}},
		{"double quotes span lines", "A=\"-----BEGIN-----\nabc\n-----END-----\n\"\nB=1\n", []Var{
			{"A", "-----BEGIN-----\nabc\n-----END-----\n", 1}, {"B", "1", 5}}},
		{"comment after quoted", "A='x' # c\nB=\"y\"# c\nC='z'   \n", []Var{{"A", "x", 1}, {"B", "y", 2}, {"C", "z", 3}}},
		{"quotes inside the other kind", `A="it's"` + "\n" + `B='say "hi"'` + "\n", []Var{{"A", "it's", 1}, {"B", `say "hi"`, 2}}},
		{"CRLF", "A=1\r\nB='x\r\ny'\r\n# c\r\nC=\"p\r\nq\"\r\n", []Var{{"A", "1", 1}, {"B", "x\ny", 2}, {"C", "p\nq", 5}}},
		{"byte order mark", "\ufeffA=1\n", []Var{{"A", "1", 1}}},
		{"unicode value", "A=héllo wörld ✓\n", []Var{{"A", "héllo wörld ✓", 1}}},
		{"hash in key line after comment lines", "# a\n# b\nA=1\n", []Var{{"A", "1", 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseDotenv(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
			checkRoundTrip(t, got)
		})
	}
}

func TestParseDotenvErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no equals", "A=1\nhunter2\n", "line 2: expected KEY=value"},
		{"bare export", "export\n", "line 1: expected KEY=value"},
		{"export without value", "export A\n", "line 1: expected KEY=value"},
		{"missing key", "\n=value\n", "line 2: missing key before ="},
		{"key starts with digit", "1A=x\n", "line 1: invalid key"},
		{"key with dash", "# c\nA-B=x\n", "line 2: invalid key"},
		{"key with dot", "a.b=x\n", "line 1: invalid key"},
		{"blank in key", "A B=x\n", "line 1: expected KEY=value"},
		{"duplicate", "A=1\nB=2\n\nA=3\n", "line 4: A is already set on line 1"},
		{"duplicate via export", "export A=1\nA=2\n", "line 2: A is already set on line 1"},
		{"unterminated single", "A=1\nB='abc\nC=2\n", "line 2: the single-quoted value of B has no closing '"},
		{"unterminated double", "A=\"abc\n\nC=2\n", "line 1: the double-quoted value of A has no closing \""},
		{"escaped closing quote", `A="abc\"` + "\n", "line 1: the double-quoted value of A has no closing \""},
		{"unknown escape", "A=\"x\ny\\qz\"\n", `line 2: unsupported escape in the double-quoted value of A`},
		{"backslash at end", `A="x\`, `line 1: unsupported escape in the double-quoted value of A`},
		{"text after single quote", "A='x'y\n", "line 1: unexpected text after the closing quote of A"},
		{"text after double quote on later line", "A=\"x\ny\" z\n", "line 2: unexpected text after the closing quote of A"},
		{"NUL unquoted", "A=x\x00y\n", "line 1: the value of A contains a NUL byte"},
		{"NUL quoted", "\nA='\x00'\n", "line 2: the value of A contains a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDotenv([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseDotenv(%q) = %#v, want error %q", tt.in, got, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseDotenv(%q) error\n %q\nwant prefix %q", tt.in, err, tt.want)
			}
			for _, secret := range []string{"hunter2", "abc", "x\x00y"} {
				if strings.Contains(tt.in, secret) && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the value %q", err, secret)
				}
			}
		})
	}
}

func TestFormatDotenv(t *testing.T) {
	tests := []struct {
		value string
		want  string // the formatted line, without the key
	}{
		{"", ``},
		{"plain-value_1.2:3@host/path%+,=", `plain-value_1.2:3@host/path%+,=`},
		{"two words", `'two words'`},
		{" lead and trail ", `' lead and trail '`},
		{"a#b", `'a#b'`},
		{`$HOME \n "q"`, `'$HOME \n "q"'`},
		{"multi\nline\n", "'multi\nline\n'"},
		{"it's", `"it's"`},
		{"it's $x \\ \"q\"\nnext", `"it's \$x \\ \"q\"\nnext"`},
		{"cr\r\nlf", `"cr\r\nlf"`},
		{"tab\there", "'tab\there'"},
		{"'", `"'"`},
		{"\"", `'"'`},
		{"\\", `'\'`},
		{"é✓", `'é✓'`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			got := string(FormatDotenv([]Var{{Key: "K", Value: tt.value}}))
			if want := "K=" + tt.want + "\n"; got != want {
				t.Errorf("FormatDotenv(%q)\n got %q\nwant %q", tt.value, got, want)
			}
			checkRoundTrip(t, []Var{{Key: "K", Value: tt.value}, {Key: "NEXT", Value: "1"}})
		})
	}
}

// checkRoundTrip fails t unless ParseDotenv(FormatDotenv(vars)) has the
// same keys and values as vars.
func checkRoundTrip(t testing.TB, vars []Var) {
	t.Helper()
	text := FormatDotenv(vars)
	back, err := ParseDotenv(text)
	if err != nil {
		t.Fatalf("ParseDotenv(FormatDotenv(%#v)) = error %v\nformatted: %q", vars, err, text)
	}
	if len(back) != len(vars) {
		t.Fatalf("round trip of %#v gave %#v (via %q)", vars, back, text)
	}
	for i := range vars {
		if back[i].Key != vars[i].Key || back[i].Value != vars[i].Value {
			t.Fatalf("round trip of %#v gave %#v (via %q)", vars[i], back[i], text)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"A": true, "_": true, "a1": true, "A_B_9": true,
		"": false, "1A": false, "A-B": false, "A.B": false, "É": false, "A B": false, "A=": false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func FuzzDotenv(f *testing.F) {
	for _, s := range []string{
		"A=1\n",
		"export A='x'\nB=\"y\\n\" # c\n",
		"A=\"multi\nline\"\nB='p\nq'\n",
		"# comment\n\nA = spaced value # c\n",
		"A=\"\\$\\\\\\\"\"\n",
		"A=1\r\nB=2\r\n",
		"\ufeffA=a#b\n",
		"A='",
		"A=\"\\",
		"1=2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As a file: whatever parses must survive Format and Parse again.
		if vars, err := ParseDotenv(data); err == nil {
			for _, v := range vars {
				if !ValidKey(v.Key) || strings.IndexByte(v.Value, 0) >= 0 {
					t.Fatalf("ParseDotenv returned %#v", v)
				}
			}
			checkRoundTrip(t, vars)
		} else if !strings.HasPrefix(err.Error(), "line ") {
			t.Fatalf("error %q does not name a line", err)
		}
		// As a value: any value without NUL round-trips.
		if strings.IndexByte(string(data), 0) < 0 {
			checkRoundTrip(t, []Var{{Key: "A", Value: string(data)}, {Key: "B", Value: "b"}})
		}
	})
}

func TestDotenvEditsKeepTheRest(t *testing.T) {
	body := "# header\nexport A=1  # first\n\nB='multi\nline'\r\nC=3"
	tests := []struct {
		name string
		f    func([]byte) ([]byte, error)
		want string
	}{
		{"replace one line", func(b []byte) ([]byte, error) { return SetVar(b, "A", "x") }, "# header\nA=x\n\nB='multi\nline'\nC=3"},
		{"replace a multi-line value", func(b []byte) ([]byte, error) { return SetVar(b, "B", "y") }, "# header\nexport A=1  # first\n\nB=y\nC=3"},
		{"append", func(b []byte) ([]byte, error) { return SetVar(b, "D", "it's") }, "# header\nexport A=1  # first\n\nB='multi\nline'\nC=3\nD=\"it's\"\n"},
		{"same value is no change", func(b []byte) ([]byte, error) { return SetVar(b, "C", "3") }, body},
		{"unset first and last", func(b []byte) ([]byte, error) { return UnsetVars(b, []string{"A", "C"}) }, "# header\n\nB='multi\nline'\n"},
		{"unset multi-line", func(b []byte) ([]byte, error) { return UnsetVars(b, []string{"B"}) }, "# header\nexport A=1  # first\n\nC=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if _, err := ParseDotenv(got); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
	if _, err := SetVar([]byte("A='open\n"), "B", "1"); err == nil {
		t.Error("edit of invalid dotenv accepted")
	}
}
