// Package access holds refline's users, their SSH public keys and their
// per-repository access levels.
//
// Identity is a public key: the key that authenticated an SSH session maps to
// at most one [User]. What that user may do on a repository is a [Level],
// which is [Admin] for administrators and otherwise whatever was granted with
// [Store.SetGrant]. Repositories are private, so the level without a grant is
// [None]. Deploy rights are per environment ([Grant], [Store.CanDeploy]).
package access

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/refline/refline/names"
	"golang.org/x/crypto/ssh"
)

// Level is an access level on a repository. Levels are ordered: each one
// includes every right of the levels below it.
type Level int

// The access levels, lowest to highest.
const (
	None   Level = iota // no access; the repository is not even listed
	Read                // clone and fetch
	Write               // push code
	Deploy              // move deploy refs and trigger deploys
	Admin               // every right, including managing access
)

var levelNames = [...]string{
	None:   "none",
	Read:   "read",
	Write:  "write",
	Deploy: "deploy",
	Admin:  "admin",
}

// ParseLevel parses a level name as users type it in `access NAME USER LEVEL`.
// Case is ignored.
func ParseLevel(s string) (Level, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	for l, name := range levelNames {
		if want == name {
			return Level(l), nil
		}
	}
	return None, fmt.Errorf("unknown access level %q: use one of %s", s, strings.Join(levelNames[:], ", "))
}

// String returns the level's name as ParseLevel accepts it.
func (l Level) String() string {
	if l < None || l > Admin {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelNames[l]
}

// Can reports whether a user holding l has the rights of need.
func (l Level) Can(need Level) bool { return l >= need }

// MarshalText encodes l as its name, so that the access file and --json
// output say "deploy" rather than 3.
func (l Level) MarshalText() ([]byte, error) {
	if l < None || l > Admin {
		return nil, fmt.Errorf("invalid access level %d", int(l))
	}
	return []byte(levelNames[l]), nil
}

// UnmarshalText decodes a level name written by MarshalText.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Grant is what a user holds on one repository: a [Level] and, for
// [Deploy], the environments it covers (SPEC §3). `deploy` covers every
// environment; `deploy:staging,qa` covers only those and otherwise gives the
// rights of [Write]. Its text form, as users type it in `access NAME USER
// GRANT` and as the access file stores it, is the level's name, followed
// for a restricted deploy grant by ":" and the environments.
type Grant struct {
	Level Level
	// Envs, set only with Level Deploy, restricts the deploy right to
	// these environments, sorted and without duplicates. Empty means
	// every environment.
	Envs []string
}

// ParseGrant parses a grant as users type it: a level name (see
// [ParseLevel]) or "deploy:ENV,ENV...". Case is ignored.
func ParseGrant(s string) (Grant, error) {
	name, envs, restricted := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	l, err := ParseLevel(name)
	if err != nil {
		return Grant{}, fmt.Errorf("%w, or deploy:ENV,ENV... for some environments only", err)
	}
	if !restricted {
		return Grant{Level: l}, nil
	}
	if l != Deploy {
		return Grant{}, fmt.Errorf("invalid grant %q: only deploy is given per environment (deploy:staging,qa); %s covers the whole repository", s, l)
	}
	g := Grant{Level: Deploy}
	for _, e := range strings.Split(envs, ",") {
		e = strings.TrimSpace(e)
		if names.Env(e) != nil {
			return Grant{}, fmt.Errorf("invalid environment %q in grant %q: give environment names as in the pipeline files (a-z, 0-9, '-'), separated by commas, e.g. deploy:staging,qa", e, s)
		}
		if !slices.Contains(g.Envs, e) {
			g.Envs = append(g.Envs, e)
		}
	}
	slices.Sort(g.Envs)
	return g, nil
}

// String returns the grant as ParseGrant accepts it: "write",
// "deploy:qa,staging".
func (g Grant) String() string {
	if len(g.Envs) == 0 {
		return g.Level.String()
	}
	return g.Level.String() + ":" + strings.Join(g.Envs, ",")
}

// Base is the level the grant gives on the repository as a whole, for every
// decision that is not about one environment. A deploy grant restricted to
// some environments gives write there: it moves no deploy ref outside its
// environments, cancels no deploy, and is not taken for an unrestricted one
// by a check that knows only levels.
func (g Grant) Base() Level {
	if g.Level == Deploy && len(g.Envs) > 0 {
		return Write
	}
	return g.Level
}

// CanDeploy reports whether the grant lets its holder deploy to env.
func (g Grant) CanDeploy(env string) bool {
	switch {
	case g.Level == Admin:
		return true
	case g.Level != Deploy:
		return false
	case len(g.Envs) == 0:
		return true
	}
	return slices.Contains(g.Envs, env)
}

// valid checks the invariants ParseGrant guarantees, for a grant read from
// the access file.
func (g Grant) valid() error {
	if g.Level <= None || g.Level > Admin {
		return fmt.Errorf("level %s", g.Level)
	}
	if len(g.Envs) > 0 && g.Level != Deploy {
		return fmt.Errorf("%s with environments", g.Level)
	}
	return nil
}

func (g Grant) clone() Grant {
	g.Envs = slices.Clone(g.Envs)
	return g
}

// MarshalText encodes g as String does, so that the access file keeps the
// form it had before deploy rights were per environment: a grant is a
// string, and an unrestricted one is the bare level name.
func (g Grant) MarshalText() ([]byte, error) {
	if _, err := g.Level.MarshalText(); err != nil {
		return nil, err
	}
	return []byte(g.String()), nil
}

// UnmarshalText decodes a grant written by MarshalText (or a level name
// written by an older refline).
func (g *Grant) UnmarshalText(b []byte) error {
	v, err := ParseGrant(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// User is a person (or robot) who may connect over SSH.
type User struct {
	// Name matches [a-z0-9][a-z0-9._-]{0,63}.
	Name string `json:"name"`
	// Keys are the user's public keys in normalized authorized_keys form,
	// "type base64", without comments or options.
	Keys []string `json:"keys"`
	// Admin users have every right on every repository and manage users.
	Admin bool `json:"admin,omitempty"`
	// CanCreate users may create repositories by pushing to a new name or
	// with `repo create`. Admins always may, whatever this says.
	CanCreate bool `json:"can_create,omitempty"`
	// Created is when the user was first added.
	Created time.Time `json:"created"`
}

// MayCreate reports whether u may create repositories.
func (u User) MayCreate() bool { return u.Admin || u.CanCreate }

func (u User) clone() User {
	u.Keys = append([]string(nil), u.Keys...)
	return u
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name is a valid user name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid user name %q: use 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// minRSABits matches OpenSSH's default RequiredRSASize.
const minRSABits = 1024

// checkKey refuses keys that must not become an identity.
func checkKey(k ssh.PublicKey) error {
	if k == nil {
		return errors.New("missing public key")
	}
	if _, ok := k.(*ssh.Certificate); ok {
		return errors.New("SSH certificates are not accepted as user keys: give the plain public key (the .pub file without -cert)")
	}
	switch k.Type() {
	case ssh.InsecureKeyAlgoDSA:
		return errors.New("DSA (ssh-dss) keys are insecure and not accepted: generate a new key with ssh-keygen -t ed25519")
	case ssh.KeyAlgoRSA:
		if ck, ok := k.(ssh.CryptoPublicKey); ok {
			if pk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && pk.N.BitLen() < minRSABits {
				return fmt.Errorf("RSA key of %d bits is too weak (OpenSSH requires at least %d): generate a new key with ssh-keygen -t ed25519", pk.N.BitLen(), minRSABits)
			}
		}
	}
	return nil
}

// ParseAuthorizedKey parses one public key written as a line of an OpenSSH
// authorized_keys or .pub file: "type base64 [comment]". Options such as
// `command="…"` or `restrict` are refused rather than silently dropped, and
// so is more than one key.
func ParseAuthorizedKey(line string) (ssh.PublicKey, error) {
	var lines []string
	for l := range strings.Lines(line) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	switch {
	case len(lines) == 0:
		return nil, errors.New("empty public key: give a line like \"ssh-ed25519 AAAA… you@host\"")
	case len(lines) > 1:
		return nil, errors.New("more than one line given: give one public key at a time")
	}
	k, _, options, _, err := ssh.ParseAuthorizedKey([]byte(lines[0]))
	if err != nil {
		return nil, fmt.Errorf("invalid public key %q: give a line like \"ssh-ed25519 AAAA… you@host\" (%v)", abbrev(lines[0]), err)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("public key %q has authorized_keys options (%s): give the key without options", abbrev(lines[0]), strings.Join(options, ","))
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// NormalizeKey returns k in authorized_keys form without a comment:
// "type base64".
func NormalizeKey(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// abbrev shortens a pasted key for an error message.
func abbrev(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
