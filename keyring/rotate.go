package keyring

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/refline/refline/atomicfile"
)

// Rotating the server's age key (SPEC §8) is done offline, on the data
// directory: RotateAge adds a new identity beside the old ones, the server
// is restarted so that `ssh HOST keys` lists both and it decrypts with
// either, every repository re-encrypts its secrets files (`refline secrets
// reencrypt --refresh --all`), and RetireAge then drops the old identity,
// followed by another restart. A running server keeps the identities it
// loaded at start.

// LoadAge reads the age identities of the keys directory dir without
// creating anything: for the offline commands, which must not make a fresh
// key set in a mistyped directory.
func LoadAge(dir string) (*Keys, error) {
	k := &Keys{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, AgeKeyFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: is %s the keys directory of a refline server that has started at least once?",
			filepath.Join(dir, AgeKeyFile), dir)
	}
	var err error
	if k.Age, err = k.ageKeys(); err != nil {
		return nil, err
	}
	return k, nil
}

// RotateAge generates a new age identity and appends it to the active ones,
// in memory and in the age key file, which it rewrites atomically (mode
// 0600). The old identities stay active. It returns the new identity.
func (k *Keys) RotateAge() (*age.X25519Identity, error) {
	ids, err := k.ageKeys() // the file as it is now, not as loaded
	if err != nil {
		return nil, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate age identity: %w", err)
	}
	ids = append(ids, id)
	if err := k.writeAge(ids); err != nil {
		return nil, err
	}
	k.Age = ids
	return id, nil
}

// RetireAge removes the identity whose recipient (age1…) is given from the
// active ones, in memory and in the age key file. It refuses to remove the
// last one: the server must always be able to decrypt.
func (k *Keys) RetireAge(recipient string) error {
	ids, err := k.ageKeys()
	if err != nil {
		return err
	}
	recipient = strings.TrimSpace(recipient)
	var keep []*age.X25519Identity
	var active []string
	for _, id := range ids {
		r := id.Recipient().String()
		active = append(active, r)
		if r != recipient {
			keep = append(keep, id)
		}
	}
	switch {
	case len(keep) == len(ids):
		return fmt.Errorf("%s is not an active age recipient of this server (active: %s)", recipient, strings.Join(active, ", "))
	case len(keep) == 0:
		return fmt.Errorf("%s is the server's only age identity and cannot be retired: "+
			"run refline keys rotate-age first, and re-encrypt every secrets file to the new recipient", recipient)
	}
	if err := k.writeAge(keep); err != nil {
		return err
	}
	k.Age = keep
	return nil
}

// writeAge replaces the age key file with ids, oldest first: a temporary
// file in the same directory, synced, renamed over the old one, and the
// directory synced, so that a crash leaves either file whole.
func (k *Keys) writeAge(ids []*age.X25519Identity) error {
	var b strings.Builder
	b.WriteString("# refline age identities, oldest first; every one is active.\n" +
		"# Add one with `refline keys rotate-age`, remove one with `refline keys retire-age`.\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "# public key: %s\n%s\n", id.Recipient(), id)
	}
	path := filepath.Join(k.Dir, AgeKeyFile)
	if _, err := atomicfile.Write(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return nil
}
