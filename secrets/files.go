package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/refline/refline/names"
	"golang.org/x/crypto/ssh"
)

// Where a repository keeps its credentials (SPEC §8), relative to its root.
const (
	// Dir holds one ENV.age file per environment.
	Dir = ".refline/secrets/"
	// RecipientsFile lists the people who may read and edit the secrets.
	RecipientsFile = ".refline/recipients"
	// ServerRecipientsFile caches the server's recipients, as `ssh HOST keys`
	// prints them. It is committed like the rest of .refline/, so that
	// everybody encrypts to the same set.
	ServerRecipientsFile = ".refline/server-recipients"
	// Ext ends every secrets file's name.
	Ext = ".age"
)

// MaxFileSize bounds a secrets file, armored. Credentials are a few KiB; the
// bound keeps a push or a mistaken `set` from feeding megabytes to age.
const MaxFileSize = 1 << 20

// ValidEnv reports whether name can name an environment, and so a secrets
// file: [a-z0-9][a-z0-9-]*, at most 100 bytes, as in pipeline files.
func ValidEnv(name string) bool {
	return names.Env(name) == nil
}

// EnvError says why name is not a valid environment name, in the words
// the secrets commands use; call it when ValidEnv(name) is false.
func EnvError(name string) error {
	return fmt.Errorf("invalid environment name %q: use lower-case letters, digits and -, "+
		"starting with a letter or digit (as under environments: in a pipeline file)", name)
}

// FilePath is the path of env's secrets file in a repository.
func FilePath(env string) string { return Dir + env + Ext }

// EnvOf returns the environment a path of the repository holds the secrets
// of: ".refline/secrets/prod.age" gives "prod". ok is false for any other
// path, including files in subdirectories of Dir; the name is not validated.
func EnvOf(path string) (env string, ok bool) {
	rest, ok := strings.CutPrefix(path, Dir)
	if !ok || strings.Contains(rest, "/") {
		return "", false
	}
	env, ok = strings.CutSuffix(rest, Ext)
	if !ok || env == "" {
		return "", false
	}
	return env, true
}

// Recipient sets.
//
// A secrets file must be re-encrypted when the set of recipients changes,
// but age output is random, so encrypting again on every command would give
// a diff on every commit. The set a file was last encrypted to is therefore
// recorded, and compared with the current one, in two places that travel
// with the file itself instead of in a sidecar that can drift from it:
//
//   - the line after the binding (Binding), the second of the plaintext, is
//     the comment "# refline-recipients: sha256:HEX" (the first, in files
//     written before bindings), HEX being the hash of the sorted
//     recipient set. Being inside the encryption, it is invisible in the
//     repository and only readable by those who can decrypt anyway; being a
//     dotenv comment, deploys and `age -d` readers ignore it;
//   - the age header itself, which refline checks for the shape of the set:
//     one X25519 stanza per age1 recipient, and for SSH recipients the key
//     tags age writes in the stanza. This catches a file re-encrypted with
//     the age CLI to other recipients while keeping the marker.
//
// Both must agree with the current set for a command to leave a file alone.

// markerPrefix starts the line after the binding in files refline writes.
const markerPrefix = "# refline-recipients: sha256:"

// SplitMarker separates the recipient-set marker from the rest of a
// plaintext (after its binding: SplitBinding); hash is "" when there is none.
func SplitMarker(plain []byte) (hash string, body []byte) {
	rest, ok := bytes.CutPrefix(plain, []byte(markerPrefix))
	if !ok {
		return "", plain
	}
	line, body, _ := bytes.Cut(rest, []byte("\n"))
	return strings.TrimSpace(string(line)), body
}

// JoinMarker prepends the marker for hash (RecipientSet.Hash) to body.
func JoinMarker(hash string, body []byte) []byte {
	return append([]byte(markerPrefix+hash+"\n"), body...)
}

// RecipientSet is a deduplicated set of recipients to encrypt to, built
// from recipients files with Add. The zero value is an empty set.
type RecipientSet struct {
	recipients []age.Recipient // in first-seen order
	keys       []string        // canonical form of each, same order
	x25519     int             // how many are age1… recipients
	sshTags    []string        // age's stanza tag of each SSH recipient, sorted
}

// Add parses a recipients file, as ParseRecipients does, and adds every
// recipient not in the set yet.
func (s *RecipientSet) Add(file string, data []byte) error {
	if _, err := ParseRecipients(file, data); err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseRecipient(line)
		if err != nil {
			return err // ParseRecipients accepted it; cannot happen
		}
		key, tag := canonicalRecipient(line)
		if slices.Contains(s.keys, key) {
			continue
		}
		s.recipients = append(s.recipients, r)
		s.keys = append(s.keys, key)
		if tag == "" {
			s.x25519++
		} else {
			s.sshTags = append(s.sshTags, tag)
			slices.Sort(s.sshTags)
		}
	}
	return nil
}

// canonicalRecipient returns a recipient line's canonical form, without
// comments, and for an SSH key the tag age puts in its stanzas (the first
// four bytes of the SHA-256 of the key, base64). The line must be valid.
func canonicalRecipient(line string) (key, sshTag string) {
	if strings.HasPrefix(line, "age1") {
		return strings.ToLower(line), ""
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return line, ""
	}
	wire := pub.Marshal()
	sum := sha256.Sum256(wire)
	return pub.Type() + " " + base64.StdEncoding.EncodeToString(wire), base64.RawStdEncoding.EncodeToString(sum[:4])
}

// Recipients are the set's recipients, in the order they were added.
func (s *RecipientSet) Recipients() []age.Recipient { return s.recipients }

// Keys are the canonical forms of the set's recipients (without comments),
// in the order they were added: two sets with equal Keys are the same.
func (s *RecipientSet) Keys() []string { return s.keys }

// Hash identifies the set independently of order and comments; it is what
// the marker (JoinMarker) records.
func (s *RecipientSet) Hash() string {
	keys := slices.Clone(s.keys)
	slices.Sort(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:])
}

// MatchesHeader reports whether the age header of the armored file has the
// shape of the set: one X25519 stanza per age1 recipient, the SSH stanzas'
// tags those of its SSH recipients, and nothing else.
func (s *RecipientSet) MatchesHeader(armored []byte) bool {
	hdr, err := age.ExtractHeader(armor.NewReader(bytes.NewReader(armored)))
	if err != nil {
		return false
	}
	x25519 := 0
	var tags []string
	for _, line := range strings.Split(string(hdr), "\n") {
		f, ok := strings.CutPrefix(line, "-> ")
		if !ok {
			continue
		}
		args := strings.Fields(f)
		switch {
		case len(args) >= 1 && args[0] == "X25519":
			x25519++
		case len(args) >= 2 && (args[0] == "ssh-ed25519" || args[0] == "ssh-rsa"):
			tags = append(tags, args[1])
		default:
			return false
		}
	}
	slices.Sort(tags)
	return x25519 == s.x25519 && slices.Equal(tags, s.sshTags)
}

// ServerRecipients picks the age recipients out of what `ssh HOST keys`
// prints (their lines start with age1; the allowed_signers line does not),
// validated, in the server's order.
func ServerRecipients(keysOutput []byte) ([]string, error) {
	var out []string
	for _, line := range strings.Split(string(keysOutput), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "age1") {
			continue
		}
		if _, err := parseRecipient(line); err != nil {
			return nil, fmt.Errorf("the server printed an invalid recipient: %w", err)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the server printed no age1… recipient")
	}
	return out, nil
}

// FormatServerRecipients is the content of ServerRecipientsFile for the
// given recipients. It holds no host name, so that clones reaching the
// server by different names write the same file.
func FormatServerRecipients(recipients []string) []byte {
	var b bytes.Buffer
	b.WriteString("# The refline server's age recipients, as `ssh HOST keys` prints them.\n" +
		"# Secrets files are encrypted to these and to .refline/recipients.\n" +
		"# refline secrets writes this file; after the server's key is rotated,\n" +
		"# refresh it with: refline secrets reencrypt --refresh --all\n")
	for _, r := range recipients {
		b.WriteString(r + "\n")
	}
	return b.Bytes()
}
