package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/refline/refline/names"
)

// Binding is the repository and environment a secrets file belongs to
// (SPEC §8). Encryption alone does not say it: the server can decrypt every
// repository's files, so a file copied from one repository or environment
// to another would decrypt there too. The binding travels inside the
// encryption, as the plaintext's first line
//
//	# refline: REPO ENV
//
// which `refline secrets` writes and the server checks before it uses a
// file. Being a dotenv comment, it is invisible to deploys and harmless to
// `age -d` readers; being encrypted, whoever can rewrite it can read the
// values anyway.
type Binding struct {
	Repo string // the repository's name as the server knows it: "team/app"
	Env  string
}

// bindingPrefix starts the binding line. It is not a prefix of the
// recipient-set marker ("# refline-recipients: …"), which follows it.
const bindingPrefix = "# refline:"

// ErrUnbound reports a plaintext without a valid binding line: a file
// written before refline bound files, or with the age CLI. The fix is
// `refline secrets reencrypt ENV` in a clone, which adds the line.
var ErrUnbound = errors.New("it is not bound to a repository and environment")

// MismatchError reports a file bound to another repository or environment
// than the one it is used for: typically one copied from elsewhere.
type MismatchError struct {
	Got  Binding // what the file says
	Want Binding // where it was found
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("this file belongs to %s, not %s", e.Got, e.Want)
}

// String is "REPO/ENV", as messages name a binding.
func (b Binding) String() string { return b.Repo + "/" + b.Env }

// Line is the binding line, without its newline.
func (b Binding) Line() string { return bindingPrefix + " " + b.Repo + " " + b.Env }

// Valid says what is wrong with b, or nil: the repository name must follow
// the grammar of SPEC §2 and the environment that of pipeline files.
func (b Binding) Valid() error {
	if err := names.Repo(b.Repo); err != nil {
		return err
	}
	if !ValidEnv(b.Env) {
		return EnvError(b.Env)
	}
	return nil
}

// Check reports whether plain, a decrypted secrets file, is bound to b.
// The error wraps ErrUnbound when the binding line is missing or malformed,
// and is a *MismatchError when it names another repository or environment.
// It never quotes the plaintext.
func (b Binding) Check(plain []byte) error {
	got, _, err := SplitBinding(plain)
	if err != nil {
		return err
	}
	if got != b {
		return &MismatchError{Got: got, Want: b}
	}
	return nil
}

// SplitBinding separates the binding line from a plaintext. Without one,
// it returns plain whole and an error wrapping ErrUnbound. A first line
// that starts as a binding line but does not hold a valid repository and
// environment is cut off, and reported as malformed (wrapping ErrUnbound).
func SplitBinding(plain []byte) (b Binding, rest []byte, err error) {
	after, ok := bytes.CutPrefix(plain, []byte(bindingPrefix))
	if !ok {
		return Binding{}, plain, ErrUnbound
	}
	line, rest, _ := bytes.Cut(after, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) == 2 {
		b = Binding{Repo: f[0], Env: f[1]}
		if b.Valid() == nil {
			return b, rest, nil
		}
	}
	// The line is not quoted: whatever it holds came from the plaintext.
	return Binding{}, rest, fmt.Errorf("%w: its first line starts with %q but is not %q",
		ErrUnbound, bindingPrefix, bindingPrefix+" REPO ENV")
}

// JoinBinding prepends b's line to rest.
func JoinBinding(b Binding, rest []byte) []byte {
	return append([]byte(b.Line()+"\n"), rest...)
}
