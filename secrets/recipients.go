package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// ErrPassphraseProtected reports an identity that is itself encrypted: an
// OpenSSH private key with a passphrase, or a passphrase-encrypted age
// identity file. This package never prompts; a caller that can (the CLI on a
// terminal) may branch on it and ask, or skip to the next key.
var ErrPassphraseProtected = errors.New("the key is protected by a passphrase")

// maxIdentityFile bounds what LoadIdentityFile reads: identity files are a few
// lines, and an RSA-16384 OpenSSH key is about 13 KiB.
const maxIdentityFile = 1 << 20

// ParseRecipients parses a recipients file such as .refline/recipients: one
// recipient a line, blank lines and lines starting with # ignored. A line is
// an age X25519 recipient (age1…) or an OpenSSH ssh-ed25519 or ssh-rsa public
// key in authorized_keys form, trailing comment allowed. The format is the one
// `age -R` reads, so the file also works with the age CLI.
//
// file names the file in error messages, which have the form
// "file:line: what is wrong and how to fix it". A file with no recipients
// yields an empty slice and no error: the caller decides whether that is
// acceptable (secrets are also encrypted to the server's recipients).
func ParseRecipients(file string, data []byte) ([]age.Recipient, error) {
	var recs []age.Recipient
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseRecipient(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, i+1, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// parseRecipient parses one non-comment line of a recipients file. Its errors
// never quote a line that may hold private key material.
func parseRecipient(line string) (age.Recipient, error) {
	switch {
	case strings.HasPrefix(line, "AGE-SECRET-KEY-"):
		return nil, errors.New("this is an age secret key, not a recipient: " +
			"remove it (and replace it, since it was exposed) and put its public key here, " +
			"which `age-keygen -y KEYFILE` prints")
	case strings.HasPrefix(line, "-----BEGIN"):
		return nil, errors.New("this is a private key, not a recipient: " +
			"remove it and put the public key here (the contents of the .pub file)")
	case strings.HasPrefix(line, "age1pq1"):
		return nil, errors.New("post-quantum age recipients (age1pq1…) cannot be mixed with " +
			"the X25519 and SSH recipients secrets are encrypted to: use an age1… key from age-keygen")
	case strings.HasPrefix(line, "age1"):
		fields := strings.Fields(line)
		if len(fields) > 1 {
			return nil, fmt.Errorf("unexpected text after the recipient %s: "+
				"put comments on a line of their own, starting with #", fields[0])
		}
		if hrp := line[:strings.LastIndexByte(line, '1')]; hrp != "age" {
			// Bech32 type "age1NAME" is a plugin (age1yubikey1…) or a tagged recipient.
			return nil, fmt.Errorf("recipient type %q needs an age plugin, which refline does not run: "+
				"use an age1… key from age-keygen, or an ssh-ed25519 or ssh-rsa key", hrp)
		}
		r, err := age.ParseX25519Recipient(line)
		if err != nil {
			return nil, fmt.Errorf("%v (copy the key again from `age-keygen -y KEYFILE`)", err)
		}
		return r, nil
	}

	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, errors.New("not a recipient: expected an age1… key, " +
			"or an ssh-ed25519 or ssh-rsa public key as in authorized_keys")
	}
	switch t := pub.Type(); t {
	case ssh.KeyAlgoED25519:
		r, err := agessh.NewEd25519Recipient(pub)
		if err != nil {
			return nil, fmt.Errorf("invalid ssh-ed25519 key: %v", err)
		}
		return r, nil
	case ssh.KeyAlgoRSA:
		r, err := agessh.NewRSARecipient(pub)
		if err != nil {
			return nil, fmt.Errorf("invalid ssh-rsa key: %v (age needs RSA keys of at least 2048 bits)", err)
		}
		return r, nil
	default:
		return nil, fmt.Errorf("%s keys cannot be encrypted to: age supports only ssh-ed25519 and ssh-rsa; "+
			"use one of those or an age1… key from age-keygen", t)
	}
}

// ParseIdentities parses identities that can decrypt secrets: an age identity
// file (AGE-SECRET-KEY-1… lines, # comments, as age-keygen writes it) or an
// unencrypted OpenSSH private key (ed25519 or rsa, as ssh-keygen writes it).
//
// Errors never quote the data. A key protected by a passphrase yields an
// error wrapping ErrPassphraseProtected.
func ParseIdentities(data []byte) ([]age.Identity, error) {
	return parseIdentities("", data)
}

// LoadIdentityFile reads and parses the identity file at path, as
// ParseIdentities does; errors name the file.
func LoadIdentityFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if len(data) > maxIdentityFile {
		return nil, fmt.Errorf("%s: too large for an identity file (over %d bytes)", path, maxIdentityFile)
	}
	return parseIdentities(path, data)
}

// parseIdentities parses data; name, if not empty, prefixes error messages.
func parseIdentities(name string, data []byte) ([]age.Identity, error) {
	fail := func(line int, err error) error {
		switch {
		case name != "" && line > 0:
			return fmt.Errorf("%s:%d: %w", name, line, err)
		case name != "":
			return fmt.Errorf("%s: %w", name, err)
		case line > 0:
			return fmt.Errorf("line %d: %w", line, err)
		}
		return err
	}

	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN AGE ENCRYPTED FILE-----")):
		return nil, fail(0, fmt.Errorf("%w: passphrase-encrypted age identity files are not supported; "+
			"decrypt it with `age -d` into a file only you can read, and use that", ErrPassphraseProtected))
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		id, err := parseSSHIdentity(trimmed)
		if err != nil {
			return nil, fail(0, err)
		}
		return []age.Identity{id}, nil
	}

	var ids []age.Identity
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		id, err := parseIdentityLine(line)
		if err != nil {
			return nil, fail(i+1, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fail(0, errors.New("no identity found: expected AGE-SECRET-KEY-1… lines "+
			"(from age-keygen) or an OpenSSH private key"))
	}
	return ids, nil
}

// parseIdentityLine parses one non-comment line of an age identity file.
// Errors do not quote the line: it may be a secret key with a typo.
func parseIdentityLine(line string) (age.Identity, error) {
	switch {
	case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(line)
		if err != nil {
			return nil, errors.New("malformed post-quantum age secret key: copy it again from the file age-keygen wrote")
		}
		return id, nil
	case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, errors.New("malformed age secret key: copy it again from the file age-keygen wrote")
		}
		return id, nil
	case strings.HasPrefix(line, "AGE-PLUGIN-"):
		return nil, errors.New("age plugin identities are not supported: use an age-keygen identity or an SSH key")
	case strings.HasPrefix(line, "age1"):
		return nil, errors.New("this is an age recipient (a public key), not an identity: " +
			"give the file that holds its AGE-SECRET-KEY-1… line")
	case strings.HasPrefix(line, "ssh-") || strings.HasPrefix(line, "ecdsa-") || strings.HasPrefix(line, "sk-"):
		return nil, errors.New("this is an SSH public key, not an identity: " +
			"give the private key file (the same path without .pub)")
	}
	return nil, errors.New("not an age identity: expected AGE-SECRET-KEY-1… lines " +
		"(from age-keygen) or an OpenSSH private key")
}

// parseSSHIdentity turns an unencrypted OpenSSH or PEM private key into an
// age identity.
func parseSSHIdentity(pemBytes []byte) (age.Identity, error) {
	k, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("%w: refline cannot prompt for it here; "+
				"use an age identity, or a copy of the key without a passphrase", ErrPassphraseProtected)
		}
		return nil, fmt.Errorf("invalid SSH private key: %v", err)
	}
	switch k := k.(type) {
	case *ed25519.PrivateKey:
		return agessh.NewEd25519Identity(*k)
	case ed25519.PrivateKey:
		return agessh.NewEd25519Identity(k)
	case *rsa.PrivateKey:
		return agessh.NewRSAIdentity(k)
	}
	return nil, errors.New("unsupported SSH key type: age can decrypt only with ssh-ed25519 and ssh-rsa keys; " +
		"use one of those or an age identity")
}
