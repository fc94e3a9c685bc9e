package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSplitBinding(t *testing.T) {
	tests := []struct {
		name  string
		plain string
		want  Binding
		rest  string
		err   string // "" = bound; else a substring of the error, which wraps ErrUnbound
	}{
		{"bound", "# refline: app staging\nA=1\n", Binding{"app", "staging"}, "A=1\n", ""},
		{"nested repository", "# refline: team/web.site production\n", Binding{"team/web.site", "production"}, "", ""},
		{"then the recipients marker", "# refline: app prod\n# refline-recipients: sha256:ab\nA=1\n", Binding{"app", "prod"}, "# refline-recipients: sha256:ab\nA=1\n", ""},
		{"no newline", "# refline: app prod", Binding{"app", "prod"}, "", ""},
		{"CRLF", "# refline: app prod\r\nA=1\r\n", Binding{"app", "prod"}, "A=1\r\n", ""},
		{"extra blanks", "# refline:   app\tprod  \nA=1\n", Binding{"app", "prod"}, "A=1\n", ""},
		{"empty", "", Binding{}, "", "not bound"},
		{"plain dotenv", "A=1\n", Binding{}, "A=1\n", "not bound"},
		{"recipients marker only", "# refline-recipients: sha256:ab\nA=1\n", Binding{}, "# refline-recipients: sha256:ab\nA=1\n", "not bound"},
		{"not the first line", "A=1\n# refline: app prod\n", Binding{}, "A=1\n# refline: app prod\n", "not bound"},
		{"indented", " # refline: app prod\n", Binding{}, " # refline: app prod\n", "not bound"},
		{"one field", "# refline: app\nA=1\n", Binding{}, "A=1\n", "its first line starts with"},
		{"three fields", "# refline: app prod x\nA=1\n", Binding{}, "A=1\n", "its first line starts with"},
		{"bad environment", "# refline: app Prod\nA=1\n", Binding{}, "A=1\n", "its first line starts with"},
		{"bad repository", "# refline: ../app prod\nA=1\n", Binding{}, "A=1\n", "its first line starts with"},
		{"repository with .git segment", "# refline: a.git/b prod\n", Binding{}, "", "its first line starts with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, rest, err := SplitBinding([]byte(tt.plain))
			if b != tt.want || string(rest) != tt.rest {
				t.Errorf("got %+v, %q; want %+v, %q", b, rest, tt.want, tt.rest)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.err != "" && (!errors.Is(err, ErrUnbound) || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want ErrUnbound with %q", err, tt.err)
			}
		})
	}
}

func TestBindingCheck(t *testing.T) {
	want := Binding{Repo: "mine", Env: "staging"}
	tests := []struct {
		name, plain string
		err         string // "" = accepted
	}{
		{"its own", "# refline: mine staging\nDB_PASSWORD=s3cr3t\n", ""},
		{"another repository", "# refline: theirs staging\nDB_PASSWORD=s3cr3t\n", "this file belongs to theirs/staging, not mine/staging"},
		{"another environment", "# refline: mine production\nDB_PASSWORD=s3cr3t\n", "this file belongs to mine/production, not mine/staging"},
		{"a repository whose name extends it", "# refline: mine/sub staging\n", "this file belongs to mine/sub/staging"},
		{"case matters", "# refline: Mine staging\n", "this file belongs to Mine/staging"},
		{"unbound", "DB_PASSWORD=s3cr3t\n", "it is not bound to a repository and environment"},
		{"malformed", "# refline: s3cr3t\nA=1\n", "it is not bound to a repository and environment: its first line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := want.Check([]byte(tt.plain))
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want %q", err, tt.err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes the plaintext: %v", err)
			}
			var mm *MismatchError
			if errors.As(err, &mm) == errors.Is(err, ErrUnbound) {
				t.Errorf("%v: want exactly one of *MismatchError and ErrUnbound", err)
			}
		})
	}
}

// The binding line is a dotenv comment: the variables read the same with
// and without it, and it stays the first line through `refline secrets`
// edits of the body.
func TestBindingIsADotenvComment(t *testing.T) {
	b := Binding{Repo: "team/app", Env: "prod"}
	body := FormatDotenv([]Var{{Key: "A", Value: "1"}, {Key: "PEM", Value: "x\ny"}, {Key: "Q", Value: `it's "q"`}})
	plain := JoinBinding(b, JoinMarker("ab", body))
	if !bytes.HasPrefix(plain, []byte("# refline: team/app prod\n# refline-recipients: sha256:ab\n")) {
		t.Fatalf("plaintext starts %q", plain)
	}
	withLine, err := ParseDotenv(plain)
	if err != nil {
		t.Fatal(err)
	}
	without, err := ParseDotenv(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(withLine) != len(without) {
		t.Fatalf("%v != %v", withLine, without)
	}
	for i := range without {
		if withLine[i].Key != without[i].Key || withLine[i].Value != without[i].Value {
			t.Errorf("var %d: %v != %v", i, withLine[i], without[i])
		}
	}
	got, rest, err := SplitBinding(plain)
	if err != nil || got != b {
		t.Fatalf("SplitBinding: %v, %v", got, err)
	}
	if hash, back := SplitMarker(rest); hash != "ab" || !bytes.Equal(back, body) {
		t.Errorf("marker %q, body %q", hash, back)
	}
}
